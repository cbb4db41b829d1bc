import {
  type ClaimAnswer,
  type ClaimStatus,
  type DeviceConfiguration,
  type FleetSlot,
  MusterError,
  normalizeIdentifier,
  type OtpClaim,
  type SlotAllocation,
} from '@muster/contract';
import { newId, now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import { randomCode, sha256Hex } from '../../platform/crypto/secrets.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import type { NewEvent } from '../../platform/db/event-store.ts';
import type { FleetSlotRow, MachineRow } from '../../platform/db/schema.ts';
import { isUniqueViolation, type Transactor } from '../../platform/db/transact.ts';
import type { CaService } from '../ca/service.ts';
import { boundedFacts, type FactsBound } from '../enroll/facts.ts';
import { findFleet } from '../fleets/store.ts';
import {
  allocateFleetSeq,
  findMachineIdByIdentifier,
  findMachineRow,
  labelsOfMachine,
  newMachineRow,
  replaceLabels,
} from '../machines/store.ts';
import { PoolService } from '../pools/service.ts';
import { machineAddress } from '../pools/store.ts';
import { deviceConfiguration, type KeptAnswer, keptAnswer, prepareDevice } from '../profiles/machine.ts';
import { placedColumns, placementFor } from '../profiles/placement.ts';
import type { RuleService } from '../rules/service.ts';
import { checkSameKey, claimKey, claimStatus, provesPossession, retiredClaim } from './proof.ts';
import { bindSlotToNewMachine, findSlotByOtp, insertSlots, keepSlotAnswer, slotFromRow, slotsOfFleet, usedTunnelPorts } from './store.ts';

// One-time-password claims (seed 001, docs/identity.md): an operator allocates slots to a fleet, each with a
// hostname from the fleet's sequence, a tunnel port unique across fleets and a one-time password shown once;
// a device presents the password with its hardware id and gets its identity, exactly once.

const tunnelPortLock = 0x706f7274; // 'port'

export interface ClaimSettings {
  tunnelPorts: { first: number; last: number };
  publicUrl: string;
  facts: FactsBound;
}

/** A claim that names no slot: the same answer whatever was wrong (fleet, password), so that it reveals nothing. */
export const invalidClaim = () => new MusterError('invalid_claim', 'The one-time password is not valid for this fleet');

export class ClaimService {
  readonly #tx: Transactor;
  readonly #ca: CaService;
  readonly #settings: ClaimSettings;

  readonly #rules: RuleService;
  readonly #keyring: Keyring;

  constructor(tx: Transactor, ca: CaService, settings: ClaimSettings, rules: RuleService, keyring: Keyring) {
    this.#tx = tx;
    this.#ca = ca;
    this.#settings = settings;
    this.#rules = rules;
    this.#keyring = keyring;
  }

  /** Adds `count` slots to a fleet; the one-time passwords are in this answer only (stored as SHA-256). */
  async allocate(actor: string, fleetRef: string, count: number): Promise<SlotAllocation> {
    return this.#tx.run(async (tx) => {
      const fleet = await findFleet(tx.db, fleetRef);
      if (!fleet) throw new MusterError('not_found', `No fleet ${fleetRef}`);
      await lockForTransaction(tx, tunnelPortLock, 0);
      const ports = freePorts(
        await usedTunnelPorts(tx.db, this.#settings.tunnelPorts.first, this.#settings.tunnelPorts.last),
        this.#settings.tunnelPorts,
        count,
      );
      const time = now();
      const slots: (FleetSlotRow & { otp: string })[] = [];
      for (const port of ports) {
        const seq = await allocateFleetSeq(tx.db, fleet.id);
        const otp = randomCode(15);
        slots.push({
          id: newId('s'),
          fleet_id: fleet.id,
          fleet_seq: seq,
          hostname: `${fleet.name}-${seq}`,
          otp_hash: sha256Hex(otp),
          tunnel_port: port,
          hwid: null,
          machine_id: null,
          ssh_public_key: null,
          claimed_at: null,
          claimed_from: null,
          answer: null,
          device_key: null,
          released_at: null,
          created_at: time,
          otp,
        });
      }
      await insertSlots(
        tx.db,
        slots.map(({ otp: _, ...row }) => row),
      );
      await tx.emit({
        type: 'fleet.slots_allocated',
        actor,
        data: { fleet: fleet.name, count, first_seq: slots[0].fleet_seq, last_seq: slots.at(-1)?.fleet_seq },
      });
      return { fleet: fleet.name, slots: slots.map((s) => ({ ...slotFromRow(s, fleet.name), otp: s.otp })) };
    });
  }

  async list(fleetRef: string): Promise<FleetSlot[]> {
    const fleet = await findFleet(this.#tx.db, fleetRef);
    if (!fleet) throw new MusterError('not_found', `No fleet ${fleetRef}`);
    return (await slotsOfFleet(this.#tx.db, fleet.id)).map((row) => slotFromRow(row, fleet.name));
  }

  /**
   * Binds the slot of this one-time password to the device, once: the machine is made (enrolled, with the slot's
   * hostname, fleet number and the hardware id), a certificate issued from the CSR, and the certificate kept. The
   * same device asking again (created false) gets its identity again only with proof of its CSR's key, else its
   * status; another device gets a conflict. Everything is rendered before the transaction opens.
   */
  async claim(input: OtpClaim, source: string): Promise<{ answer: ClaimAnswer | ClaimStatus; created: boolean }> {
    const hwid = normalizeIdentifier('hwid', input.hwid);
    if (!hwid) throw new MusterError('invalid_identifier', `hwid "${input.hwid}" identifies nothing`);
    const otpHash = sha256Hex(input.otp);
    const facts = input.facts ? boundedFacts(input.facts, this.#settings.facts) : '{}';
    const look = async () => {
      const slot = await findSlotByOtp(this.#tx.db, input.fleet, otpHash);
      if (!slot) throw invalidClaim();
      if (slot.hwid === null) return { slot, retried: null };
      if (slot.hwid !== hwid.value) throw new MusterError('conflict', 'This one-time password was claimed by another device');
      return { slot, retried: { answer: await this.#retry(slot, input), created: false } };
    };
    const { slot, retried } = await look();
    if (retried) return retried;
    const rule = await this.#rules.select({ door: 'claim', facts: JSON.parse(facts) as Record<string, unknown> });
    if (rule && rule.action !== 'discover')
      throw await this.#rules.refuseClaim(rule.name, { door: 'otp', fleet: input.fleet, hwid: hwid.value, source });
    const deviceKey = claimKey(input.csr);
    const time = now();
    const placement = await placementFor(this.#tx, rule);
    let row = newMachineRow([hwid], {
      state: 'enrolled',
      hostname: slot.hostname,
      fleet_id: slot.fleet_id,
      fleet_seq: slot.fleet_seq,
      facts,
      enrolled_at: time,
      last_seen_at: time,
    });
    // The slot gives the fleet and host name, so placing the machine takes nothing from a sequence here.
    row = { ...row, ...(await placedColumns(this.#tx, row, placement)).columns };
    const device = await prepareDevice(this.#tx, this.#keyring, row, placement.labels, hwid.value, {
      profile: placement.profile,
      fleet: slot.fleet,
    });
    const subject = device.policy ?? slot.hostname;
    // Signed before the transaction opens, unless an IP name may be the pool address the transaction allocates: the
    // CA policy allows only a machine's own pool address, so such a certificate is issued once the address is held.
    const late = input.csr !== undefined && slot.pool !== null && typeof subject !== 'string' && (subject.ipAddresses?.length ?? 0) > 0;
    const signed = input.csr && !late ? await this.#ca.sign(this.#tx, row.id, input.csr, subject, 'device', source) : null;
    const answer = this.#answer(row, slot, device.configuration, null, signed?.certificate ?? {});
    try {
      return await this.#tx.run(async (tx) => {
        const claimed: NewEvent = {
          type: 'machine.claimed',
          machineId: row.id,
          actor: 'device',
          reason: rule ? `one-time password of slot ${slot.hostname}; rule ${rule.name}` : `one-time password of slot ${slot.hostname}`,
          data: {
            door: 'otp',
            fleet: slot.fleet,
            slot: slot.id,
            hostname: slot.hostname,
            tunnel_port: slot.tunnel_port,
            rule: rule?.name ?? null,
            profile: row.profile,
            profile_version: row.profile_version,
            source,
          },
        };
        const binding = {
          hwid: hwid.value,
          machine_id: row.id,
          ssh_public_key: input.ssh_public_key ?? null,
          claimed_at: time,
          claimed_from: source,
          answer: keptAnswer(answer),
          device_key: deviceKey,
        };
        const events = signed ? [claimed, signed.event] : [claimed];
        if (!(await bindSlotToNewMachine(tx, slot.id, binding, row, [hwid], signed?.row ?? null, events))) throw new SlotTaken();
        if (Object.keys(placement.labels).length) await replaceLabels(tx.db, row.id, placement.labels);
        await device.save(tx);
        const ip = slot.pool ? await PoolService.allocateInTx(tx, slot.fleet_id, row.id) : null;
        if (late && input.csr) {
          const certificate = await this.#ca.issueInTx(tx, row.id, input.csr, subject, 'device', source);
          const issued = this.#answer(row, slot, device.configuration, ip, certificate);
          await keepSlotAnswer(tx.db, slot.id, keptAnswer(issued));
          return { answer: issued, created: true };
        }
        return { answer: ip ? { ...answer, ip_address: ip } : answer, created: true };
      });
    } catch (error) {
      const raced = error instanceof SlotTaken || isUniqueViolation(error) || (error instanceof MusterError && error.code === 'conflict');
      if (!raced) throw error;
      // Another claim bound the slot, or took the hardware id, between the look and the write: it may have been
      // this device's own retry, which learns what a retry learns.
      const settled = await look();
      if (settled.retried) return settled.retried;
      if (error instanceof MusterError) throw error;
      if (settled.slot.hwid === null && (await findMachineIdByIdentifier(this.#tx.db, hwid)))
        throw new MusterError('conflict', 'This hardware id belongs to a machine already; a device claims one slot');
      throw new MusterError('conflict', 'This one-time password was claimed by another device');
    }
  }

  /**
   * The same device asking again: its status, or with proof of its key its identity, read and rendered now (the
   * host name, profile version, files and address it has today, which always agree). A retired machine is told so.
   */
  async #retry(slot: FleetSlotRow & { fleet: string }, input: OtpClaim): Promise<ClaimAnswer | ClaimStatus> {
    const machine = slot.machine_id ? await findMachineRow(this.#tx.db, slot.machine_id) : undefined;
    if (slot.released_at || !machine || machine.state === 'retired') throw retiredClaim(slot.released_at ?? machine?.updated_at ?? null);
    checkSameKey(slot.device_key, input.csr);
    if (!provesPossession(slot.device_key, input.hwid, input.proof)) return claimStatus('approved', slot.device_key !== null);
    const labels = await labelsOfMachine(this.#tx.db, machine.id);
    const device = await deviceConfiguration(this.#tx, this.#keyring, machine, labels, slot.hwid, { fleet: slot.fleet });
    const kept = JSON.parse(slot.answer ?? '{}') as KeptAnswer;
    return this.#answer(machine, slot, device.configuration, await machineAddress(this.#tx.db, machine.id), kept);
  }

  #answer(
    machine: Pick<MachineRow, 'id' | 'hostname'>,
    slot: Pick<FleetSlotRow, 'fleet_seq' | 'tunnel_port'> & { fleet: string },
    configuration: DeviceConfiguration,
    ip: string | null,
    certificate: KeptAnswer,
  ): ClaimAnswer {
    const tunnelPort = slot.tunnel_port as number;
    const answer: ClaimAnswer = {
      status: 'approved',
      machine_id: machine.id,
      hostname: machine.hostname,
      fleet: slot.fleet,
      fleet_seq: slot.fleet_seq,
      tunnel_port: tunnelPort,
      configuration: {
        server: this.#settings.publicUrl,
        hostname: machine.hostname,
        fleet: slot.fleet,
        tunnel_port: tunnelPort,
        ...configuration,
      },
    };
    if (ip) answer.ip_address = ip;
    if (certificate.certificate) {
      answer.certificate = certificate.certificate;
      if (certificate.renew_after) answer.renew_after = certificate.renew_after;
      answer.ca_chain = this.#ca.chain;
    }
    return answer;
  }
}

class SlotTaken extends Error {}

/** The first `count` ports of the range that no slot holds. */
function freePorts(used: number[], range: { first: number; last: number }, count: number): number[] {
  const taken = new Set(used);
  const free: number[] = [];
  for (let port = range.first; port <= range.last && free.length < count; port++) if (!taken.has(port)) free.push(port);
  if (free.length < count) {
    throw new MusterError(
      'conflict',
      `The tunnel port range ${range.first}-${range.last} has ${free.length} free port(s), fewer than the ${count} asked for; widen MUSTER_TUNNEL_PORTS`,
    );
  }
  return free;
}
