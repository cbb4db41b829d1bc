import { type IpPool, MusterError } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { findPool, insertAllocation, poolAllocations, savePool } from './store.ts';

// IP pools (docs/identity.md): an IPv4 range per fleet; each machine claimed into the fleet takes the lowest free
// host address in the claim's transaction, and gives it back when it retires.

const poolLock = 0x6970; // 'ip'

/** The host addresses of an IPv4 CIDR as numbers: network and broadcast left out (both kept for /31 and /32). */
export function parseCidr(cidr: string): { first: number; last: number; text: string } {
  const [address, prefixText] = cidr.split('/');
  const octets = address.split('.').map(Number);
  const prefix = Number(prefixText);
  if (
    octets.length !== 4 ||
    octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255) ||
    !Number.isInteger(prefix) ||
    prefix < 8 ||
    prefix > 32
  ) {
    throw new MusterError('bad_request', `${cidr} is not an IPv4 range from /8 to /32, e.g. 10.20.0.0/24`);
  }
  const size = 2 ** (32 - prefix);
  const network = Math.floor((((octets[0] * 256 + octets[1]) * 256 + octets[2]) * 256 + octets[3]) / size) * size;
  const text = `${addressText(network)}/${prefix}`;
  return size <= 2 ? { first: network, last: network + size - 1, text } : { first: network + 1, last: network + size - 2, text };
}

export function addressText(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function addressNumber(text: string): number {
  return text.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export class PoolService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  /** Sets a fleet's pool. A range that leaves out an address already given is refused. */
  async set(actor: string, fleetRef: string, cidr: string): Promise<IpPool> {
    const range = parseCidr(cidr);
    await this.#tx.run(async (tx) => {
      const fleet = await findFleet(tx.db, fleetRef);
      if (!fleet) throw new MusterError('not_found', `No fleet ${fleetRef}`);
      await lockForTransaction(tx, poolLock, 0);
      const outside = (await poolAllocations(tx.db, fleet.id)).filter((a) => {
        const n = addressNumber(a.address);
        return n < range.first || n > range.last;
      });
      if (outside.length) {
        throw new MusterError(
          'conflict',
          `${range.text} leaves out ${outside.length} address(es) machines hold, e.g. ${outside[0].address}`,
        );
      }
      await savePool(tx.db, fleet.id, range.text, now());
      await tx.emit({ type: 'fleet.ip_pool_set', actor, data: { fleet: fleet.name, cidr: range.text } });
    });
    return this.get(fleetRef);
  }

  async get(fleetRef: string): Promise<IpPool> {
    const fleet = await findFleet(this.#tx.db, fleetRef);
    if (!fleet) throw new MusterError('not_found', `No fleet ${fleetRef}`);
    const pool = await findPool(this.#tx.db, fleet.id);
    if (!pool) throw new MusterError('not_found', `Fleet ${fleet.name} has no IP pool`);
    const range = parseCidr(pool.cidr);
    const allocations = (await poolAllocations(this.#tx.db, fleet.id)).sort((a, b) => addressNumber(a.address) - addressNumber(b.address));
    return { fleet: fleet.name, cidr: pool.cidr, size: range.last - range.first + 1, allocated: allocations.length, allocations };
  }

  /**
   * Inside a claim's transaction: the lowest free address of the fleet's pool for the machine, or null when the
   * fleet has no pool. A full pool fails the claim (409), which then changes nothing.
   */
  static async allocateInTx(tx: Tx, fleetId: string, machineId: string): Promise<string | null> {
    const pool = await findPool(tx.db, fleetId);
    if (!pool) return null;
    await lockForTransaction(tx, poolLock, 0);
    const range = parseCidr(pool.cidr);
    const taken = new Set((await poolAllocations(tx.db, fleetId)).map((a) => addressNumber(a.address)));
    for (let n = range.first; n <= range.last; n++) {
      if (taken.has(n)) continue;
      const address = addressText(n);
      await insertAllocation(tx.db, fleetId, address, machineId, now());
      return address;
    }
    throw new MusterError('conflict', `The IP pool ${pool.cidr} of this fleet is full`);
  }
}
