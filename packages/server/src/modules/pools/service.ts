import { type IpPool, MusterError } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import { addressNumber, addressText, lowestFree, parseCidr, rangeSize } from './cidr.ts';
import { findPool, insertAllocation, poolAllocations, savePool } from './store.ts';

// IP pools (docs/identity.md): an IPv4 or IPv6 range per fleet; each machine claimed into the fleet takes the lowest
// free address in the claim's transaction, and gives it back when it retires.

const poolLock = 0x6970; // 'ip'

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
        const held = addressNumber(a.address);
        return !held || held.family !== range.family || held.n < range.first || held.n > range.last;
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
    const key = (address: string) => addressNumber(address)?.n ?? 0n;
    const allocations = (await poolAllocations(this.#tx.db, fleet.id)).sort((a, b) => (key(a.address) < key(b.address) ? -1 : 1));
    return {
      fleet: fleet.name,
      cidr: pool.cidr,
      family: range.family,
      size: Number(rangeSize(range)),
      allocated: allocations.length,
      allocations,
    };
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
    const taken = (await poolAllocations(tx.db, fleetId)).flatMap((a) => {
      const held = addressNumber(a.address);
      return held?.family === range.family ? [held.n] : [];
    });
    const free = lowestFree(range, taken);
    if (free === null) throw new MusterError('conflict', `The IP pool ${pool.cidr} of this fleet is full`);
    const address = addressText(free, range.family);
    await insertAllocation(tx.db, fleetId, address, machineId, now());
    return address;
  }
}
