import { type ClaimAnswer, type FleetSlot, MusterError, normalizeIdentifier, type OtpClaim, type SlotAllocation } from '@muster/contract';
import { newId, now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import { randomCode, sha256Hex } from '../../platform/crypto/secrets.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import type { FleetSlotRow } from '../../platform/db/schema.ts';
import { isUniqueViolation, type Transactor } from '../../platform/db/transact.ts';
import type { CaService } from '../ca/service.ts';
import { boundedFacts, type FactsBound } from '../enroll/facts.ts';
import { findFleet } from '../fleets/store.ts';
import {
  allocateFleetSeq,
  findMachineIdByIdentifier,
  findMachineRow,
  insertMachineWithEvent,
  labelsOfMachine,
  newMachineRow,
  replaceLabels,
} from '../machines/store.ts';
import { PoolService } from '../pools/service.ts';
import { deviceConfiguration, renderForMachine, storableAnswer } from '../profiles/machine.ts';
import { placedColumns, placementFor } from '../profiles/placement.ts';
import type { RuleService } from '../rules/service.ts';
import { bindSlot, findSlotByOtp, insertSlots, slotFromRow, slotsOfFleet, usedTunnelPorts } from './store.ts';

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

  /** A kept answer with its profile's files rendered again: they may hold the machine secret, so are never kept. */
  async #withFiles(answer: ClaimAnswer): Promise<ClaimAnswer> {
    if (!answer.configuration.profile) return answer;
    const row = await findMachineRow(this.#tx.db, answer.machine_id);
    if (!row) return answer;
    const labels = await labelsOfMachine(this.#tx.db, row.id);
    const made = await renderForMachine(this.#tx, this.#keyring, row, labels, { redact: false });
    return made ? { ...answer, configuration: { ...answer.configuration, files: made.rendered.files } } : answer;
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
   * hostname, fleet number and the hardware id), a certificate issued from the CSR, and the answer kept, so that
   * the same device asking again gets the same answer (created false). Another device gets a conflict.
   */
  async claim(input: OtpClaim, source: string): Promise<{ answer: ClaimAnswer; created: boolean }> {
    const hwid = normalizeIdentifier('hwid', input.hwid);
    if (!hwid) throw new MusterError('invalid_identifier', `hwid "${input.hwid}" identifies nothing`);
    const otpHash = sha256Hex(input.otp);
    const facts = input.facts ? boundedFacts(input.facts, this.#settings.facts) : '{}';
    const again = async () => {
      const slot = await findSlotByOtp(this.#tx.db, input.fleet, otpHash);
      if (!slot) throw invalidClaim();
      if (slot.released_at) throw new MusterError('conflict', 'This slot was released: its machine was retired');
      if (slot.hwid === null) return null;
      if (slot.hwid !== hwid.value) throw new MusterError('conflict', 'This one-time password was claimed by another device');
      return { answer: await this.#withFiles(JSON.parse(slot.answer as string) as ClaimAnswer), created: false };
    };
    const earlier = await again();
    if (earlier) return earlier;
    const rule = await this.#rules.select({ door: 'claim', facts: JSON.parse(facts) as Record<string, unknown> });
    if (rule && rule.action !== 'discover')
      throw await this.#rules.refuseClaim(rule.name, { door: 'otp', fleet: input.fleet, hwid: hwid.value, source });
    try {
      return await this.#tx.run(async (tx) => {
        const slot = await findSlotByOtp(tx.db, input.fleet, otpHash);
        if (!slot || slot.hwid !== null || slot.released_at || slot.tunnel_port === null) throw new SlotTaken();
        if (await findMachineIdByIdentifier(tx.db, hwid)) {
          throw new MusterError('conflict', 'This hardware id belongs to a machine already; a device claims one slot');
        }
        const time = now();
        let row = newMachineRow([hwid], {
          state: 'enrolled',
          hostname: slot.hostname,
          fleet_id: slot.fleet_id,
          fleet_seq: slot.fleet_seq,
          facts,
          enrolled_at: time,
          last_seen_at: time,
        });
        // The slot gives the fleet; the machine's row has it already.
        const placement = await placementFor(tx, rule);
        row = { ...row, ...(await placedColumns(tx, row, placement)).columns };
        await insertMachineWithEvent(tx, row, [hwid], {
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
        });
        if (Object.keys(placement.labels).length) await replaceLabels(tx.db, row.id, placement.labels);
        const device = await deviceConfiguration(tx, this.#keyring, row, placement.labels, hwid.value, {
          profile: placement.profile,
          fleet: slot.fleet,
          created: true,
        });
        const answer: ClaimAnswer = {
          machine_id: row.id,
          hostname: slot.hostname,
          fleet: slot.fleet,
          fleet_seq: slot.fleet_seq,
          tunnel_port: slot.tunnel_port,
          configuration: {
            server: this.#settings.publicUrl,
            hostname: slot.hostname,
            fleet: slot.fleet,
            tunnel_port: slot.tunnel_port,
            ...device.configuration,
          },
        };
        const ip = await PoolService.allocateInTx(tx, slot.fleet_id, row.id);
        if (ip) answer.ip_address = ip;
        if (input.csr) {
          const certificate = await this.#ca.issueInTx(tx, row.id, input.csr, device.policy ?? slot.hostname, 'device', source);
          answer.certificate = certificate.certificate;
          answer.renew_after = certificate.renew_after;
          answer.ca_chain = this.#ca.chain;
        }
        const bound = await bindSlot(tx.db, slot.id, {
          hwid: hwid.value,
          machine_id: row.id,
          ssh_public_key: input.ssh_public_key ?? null,
          claimed_at: time,
          claimed_from: source,
          answer: storableAnswer(answer),
        });
        if (!bound) throw new SlotTaken();
        return { answer, created: true };
      });
    } catch (error) {
      const raced = error instanceof SlotTaken || isUniqueViolation(error) || (error instanceof MusterError && error.code === 'conflict');
      if (!raced) throw error;
      // Another claim bound the slot, or took the hardware id, between the look and the write: it may have been
      // this device's own retry, which gets the answer its first claim got.
      const settled = await again();
      if (settled) return settled;
      if (error instanceof MusterError) throw error;
      throw new MusterError('conflict', 'This one-time password was claimed by another device');
    }
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
