import { type EnrollRequest, type Identifier, type IdentifierKind, type Machine, MusterError, type Rule } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { MachineRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { type Budget, MinuteBudget } from '../../platform/limits/budget.ts';
import { claimIdentifiers, normalizeAll, transitionInTx } from '../machines/service.ts';
import {
  findIdentifierOwners,
  findMachineRow,
  insertMachineWithEvent,
  loadMachines,
  machineFromRow,
  newMachineRow,
  replaceLabels,
  updateMachineRow,
} from '../machines/store.ts';
import { nameBeforeTransaction, placedColumns, placementFor } from '../profiles/placement.ts';
import type { RuleService } from '../rules/service.ts';
import { boundedFacts, defaultFactsBound, type FactsBound } from './facts.ts';

export interface EnrollResult {
  machine: Machine;
  created: boolean;
}

const identifierFields = { service_tag: 'serial', serial: 'serial', mac_address: 'mac', uuid: 'uuid', asset_tag: 'asset' } as const;

/** The identifiers an enrollment carries: the seed's fields and any explicit list. A bad value names its field. */
function collectIdentifiers(input: EnrollRequest): Identifier[] {
  const raw: { kind: IdentifierKind; value: string; path: string }[] = (input.identifiers ?? []).map((i, n) => ({
    ...i,
    path: `/identifiers/${n}/value`,
  }));
  for (const [field, kind] of Object.entries(identifierFields)) {
    const value = input[field as keyof typeof identifierFields];
    if (value) raw.push({ kind, value, path: `/${field}` });
  }
  return normalizeAll(raw);
}

/** Identifiers in the order the API lists them: by kind, then value. */
function sortIdentifiers(identifiers: Identifier[]): Identifier[] {
  return [...identifiers].sort((a, b) => (a.kind === b.kind ? (a.value < b.value ? -1 : 1) : a.kind < b.kind ? -1 : 1));
}

/** The states in which an anonymous enrollment may still change a machine (the seed's registration flow). */
const anonymousMayChange = new Set(['discovered', 'enrolled']);

export interface EnrollLimits {
  facts: FactsBound;
  /** The server-wide budget for new machines, shared with the boot doors (and, on PostgreSQL, the replicas). */
  discoveries: Budget;
}

export class EnrollService {
  readonly #tx: Transactor;
  readonly #limits: EnrollLimits;

  readonly #rules: RuleService | null;

  constructor(
    tx: Transactor,
    limits: EnrollLimits = { facts: defaultFactsBound, discoveries: new MinuteBudget(0) },
    rules: RuleService | null = null,
  ) {
    this.#tx = tx;
    this.#limits = limits;
    this.#rules = rules;
  }

  /**
   * Where the matching rule gives a profile with a host name template, the name is rendered before the enrollment's
   * transaction opens (nameBeforeTransaction): for a new machine, or for one a boot door discovered and left
   * unplaced. `machineId` null means a new machine. Other enrollments render nothing, and cost nothing here.
   */
  async #nameBeforeTransaction(rule: Rule | null, identifiers: Identifier[], facts: string | undefined) {
    if (rule?.action !== 'discover') return null;
    const placement = await placementFor(this.#tx, rule);
    if (!placement.profile?.spec.hostname) return null;
    const owners = [...new Set((await findIdentifierOwners(this.#tx.db, identifiers)).map((o) => o.machine_id))];
    if (owners.length > 1) return null;
    const time = now();
    const known = owners.length === 1 ? await findMachineRow(this.#tx.db, owners[0]) : undefined;
    if (known && (known.state !== 'discovered' || known.fleet_id !== null || known.profile !== null)) return null;
    const row =
      known ?? newMachineRow(identifiers, { state: 'enrolled', facts: facts ?? '{}', enrolled_at: time, last_seen_at: time }, time);
    const named = await nameBeforeTransaction(this.#tx, { ...row, facts: facts ?? row.facts }, placement);
    return { ...named, machineId: known ? known.id : null };
  }

  /**
   * Enrolls a machine from its registration image. Safe to retry: the same identifiers find the same
   * machine. Identifiers that point at two machines are a conflict: recorded as an event, never merged.
   * A machine past enrolled is not changed: the enrollment becomes a machine.enroll_reported event.
   */
  async enroll(input: EnrollRequest, source: string): Promise<EnrollResult> {
    const identifiers = collectIdentifiers(input);
    if (identifiers.length === 0) {
      throw new MusterError(
        'no_usable_identifier',
        'Give at least one real identifier (service_tag, mac_address, uuid, serial); firmware defaults do not count',
        {
          errors: [{ path: '/service_tag', message: 'missing or a firmware default' }],
        },
      );
    }
    const facts = input.hardware === undefined ? undefined : boundedFacts(input.hardware, this.#limits.facts);
    const actor = 'device';
    const rule = this.#rules
      ? await this.#rules.select({
          door: 'enroll',
          serial: identifiers.find((i) => i.kind === 'serial')?.value,
          mac: identifiers.find((i) => i.kind === 'mac')?.value,
          // The parsed body is what the stored JSON would parse back to: no second copy of every enrollment's facts.
          facts: input.hardware ?? {},
        })
      : null;
    const named = await this.#nameBeforeTransaction(rule, identifiers, facts);
    const outcome = await this.#tx.run(async (tx) => {
      const owners = await findIdentifierOwners(tx.db, identifiers);
      const machineIds = [...new Set(owners.map((o) => o.machine_id))];
      const time = now();
      if (machineIds.length > 1) {
        for (const machineId of machineIds) {
          await tx.emit({
            type: 'machine.identifier_conflict',
            machineId,
            actor,
            reason: 'enrollment names identifiers of several machines',
            data: { owners, source },
          });
        }
        return { conflict: owners };
      }
      if (machineIds.length === 0) {
        if (rule && rule.action !== 'discover') {
          await tx.emit({
            type: 'boot.refused',
            actor,
            reason: `rule ${rule.name} refuses it`,
            data: { door: 'enroll', identifiers, rule: rule.name, source },
          });
          return { refused: rule.name };
        }
        // From allowance in hand: a round trip only when a replica's reserved chunk is used up (limits/shared.ts).
        if (!(await this.#limits.discoveries.admit('enroll'))) return { throttled: this.#limits.discoveries.retryAfter() };
        let row =
          named?.machineId === null
            ? named.machine
            : newMachineRow(identifiers, { state: 'enrolled', facts: facts ?? '{}', enrolled_at: time, last_seen_at: time }, time);
        const placement = named?.machineId === null ? named.placement : await placementFor(tx, rule);
        row = { ...row, ...(await placedColumns(tx, row, placement)).columns };
        await insertMachineWithEvent(tx, row, identifiers, {
          type: 'machine.enrolled',
          machineId: row.id,
          actor,
          data: {
            created: true,
            identifiers,
            source,
            rule: rule?.name ?? null,
            fleet: placement.fleet?.name ?? null,
            profile: row.profile,
            profile_version: row.profile_version,
          },
        });
        if (Object.keys(placement.labels).length) await replaceLabels(tx.db, row.id, placement.labels);
        // A new machine's answer is all in hand: no need to read it back.
        return {
          machine: machineFromRow(row, {
            fleet: placement.fleet?.name ?? null,
            labels: placement.labels,
            identifiers: sortIdentifiers(identifiers),
            hardware: input.hardware ?? {},
          }),
          created: true,
        };
      }
      let row = (await findMachineRow(tx.db, machineIds[0])) as MachineRow;
      if (!anonymousMayChange.has(row.state)) {
        // Anyone who knows a MAC can send this: past enrolled, what it claims is kept as a report for an
        // operator, and the machine, its facts, identifiers and state stay as they are.
        await updateMachineRow(tx.db, row.id, { last_seen_at: time });
        await tx.emit({
          type: 'machine.enroll_reported',
          machineId: row.id,
          actor,
          reason: `an enrollment of a ${row.state} machine changes nothing; an operator may apply what it reports`,
          data: { identifiers, facts: facts === undefined ? null : JSON.parse(facts), source },
        });
        return { machine: (await loadMachines(tx.db, [{ ...row, last_seen_at: time }]))[0], created: false };
      }
      const changes: Partial<MachineRow> = { last_seen_at: time, updated_at: time };
      if (facts !== undefined) changes.facts = facts;
      if (!row.service_tag) changes.service_tag = identifiers.find((i) => i.kind === 'serial')?.value ?? null;
      if (!row.mac_address) changes.mac_address = identifiers.find((i) => i.kind === 'mac')?.value ?? null;
      // A machine a boot door discovered without placing it is placed now, with the facts the enrollment brings.
      let placedLabels: Record<string, string> | null = null;
      if (rule?.action === 'discover' && row.state === 'discovered' && row.fleet_id === null && row.profile === null) {
        const early = named?.machineId === row.id ? named : null;
        const placement = early ? early.placement : await placementFor(tx, rule);
        if (early) Object.assign(changes, placedFields(early.machine));
        Object.assign(changes, (await placedColumns(tx, { ...row, ...changes }, placement)).columns);
        if (Object.keys(placement.labels).length) placedLabels = placement.labels;
      }
      await updateMachineRow(tx.db, row.id, changes);
      if (placedLabels) await replaceLabels(tx.db, row.id, placedLabels);
      row = { ...row, ...changes };
      await claimIdentifiers(tx, row.id, identifiers, actor);
      if (row.state === 'discovered') row = await transitionInTx(tx, row, 'enrolled', actor, 'enrolled from the registration image');
      await tx.emit({ type: 'machine.enrolled', machineId: row.id, actor, data: { created: false, identifiers, source } });
      return { machine: (await loadMachines(tx.db, [row]))[0], created: false };
    });
    if ('refused' in outcome) throw new MusterError('boot_refused', `Rule ${outcome.refused} refuses this machine`);
    if ('throttled' in outcome) {
      throw new MusterError('rate_limited', `Too many new machines this minute; retry in ${outcome.throttled} s`, {
        extra: { retry_after: outcome.throttled },
      });
    }
    if ('conflict' in outcome) {
      throw new MusterError('identifier_conflict', 'These identifiers belong to different machines; an operator must resolve it', {
        extra: { conflicts: outcome.conflict },
      });
    }
    return outcome;
  }
}

/** What placing a machine sets, from a machine named before its transaction. */
function placedFields(row: MachineRow): Partial<MachineRow> {
  return {
    fleet_id: row.fleet_id,
    fleet_seq: row.fleet_seq,
    hostname: row.hostname,
    profile: row.profile,
    profile_version: row.profile_version,
    pi_tree: row.pi_tree,
  };
}
