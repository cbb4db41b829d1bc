import {
  allowedTransitions,
  canTransition,
  type Identifier,
  type Machine,
  type MachineCreate,
  type MachineListQuery,
  type MachineState,
  type MachineUpdate,
  MusterError,
  normalizeIdentifier,
  type PageResult,
  parseIdentifierRef,
} from '@muster/contract';
import type { Kysely } from 'kysely';
import { now } from '../../platform/crypto/ids.ts';
import type { Database, MachineRow } from '../../platform/db/schema.ts';
import { isUniqueViolation, type Transactor, type Tx } from '../../platform/db/transact.ts';
import { findFleet } from '../fleets/store.ts';
import {
  allocateFleetSeq,
  countMachineRows,
  findIdentifierOwners,
  findMachineIdByIdentifier,
  findMachineRow,
  insertIdentifiers,
  insertMachineRow,
  listMachineRows,
  loadMachines,
  type MachineFilter,
  newMachineRow,
  releaseCredentials,
  replaceLabels,
  updateMachineRow,
} from './store.ts';

/** Finds a machine by id (m_…) or identifier (serial:ABC123); throws machine_not_found. */
export async function resolveMachine(db: Kysely<Database>, ref: string): Promise<MachineRow> {
  let id: string | undefined = ref;
  if (!ref.startsWith('m_')) {
    const identifier = parseIdentifierRef(ref);
    id = identifier ? await findMachineIdByIdentifier(db, identifier) : undefined;
  }
  const row = id ? await findMachineRow(db, id) : undefined;
  if (!row)
    throw new MusterError(
      'machine_not_found',
      `No machine ${ref}; give an id (m_…) or an identifier such as serial:ABC123 or mac:00:11:22:33:44:55`,
    );
  return row;
}

/** Moves a machine to another state inside a transaction, or throws illegal_transition listing the allowed ones. */
export async function transitionInTx(tx: Tx, row: MachineRow, to: MachineState, actor: string, reason: string): Promise<MachineRow> {
  const from = row.state as MachineState;
  if (!canTransition(from, to)) {
    const allowed = allowedTransitions(from);
    throw new MusterError(
      'illegal_transition',
      `The machine is ${from} and cannot become ${to}; allowed: ${allowed.join(', ') || 'none'}`,
      {
        extra: { from, to, allowed },
      },
    );
  }
  const time = now();
  const changes: Partial<MachineRow> = { state: to, updated_at: time };
  if (to === 'enrolled' && !row.enrolled_at) changes.enrolled_at = time;
  await updateMachineRow(tx.db, row.id, changes);
  await tx.emit({ type: 'machine.state_changed', machineId: row.id, actor, reason, data: { from, to } });
  if (to === 'retired') {
    // A retired machine's credentials end with it: its certificates are revoked and its slot's tunnel port freed.
    const released = await releaseCredentials(tx.db, row.id, time, 'machine retired');
    for (const serial of released.revoked) {
      await tx.emit({ type: 'certificate.revoked', machineId: row.id, actor, reason: 'machine retired', data: { serial } });
    }
    if (released.tunnelPorts.length) {
      await tx.emit({ type: 'machine.tunnel_port_released', machineId: row.id, actor, data: { tunnel_ports: released.tunnelPorts } });
    }
    if (released.addresses.length) {
      await tx.emit({ type: 'machine.ip_address_released', machineId: row.id, actor, data: { addresses: released.addresses } });
    }
  }
  return { ...row, ...changes };
}

/** Claims identifiers for a machine; throws identifier_conflict when one belongs to another machine. */
export async function claimIdentifiers(tx: Tx, machineId: string, identifiers: Identifier[], actor: string): Promise<Identifier[]> {
  if (identifiers.length === 0) return [];
  const owners = await findIdentifierOwners(tx.db, identifiers);
  const foreign = owners.filter((o) => o.machine_id !== machineId);
  if (foreign.length > 0) {
    throw new MusterError(
      'identifier_conflict',
      `${foreign.map((o) => `${o.kind}:${o.value}`).join(', ')} already identifies ${foreign[0].machine_id}`,
      {
        extra: { conflicts: foreign },
      },
    );
  }
  const owned = new Set(owners.map((o) => `${o.kind}:${o.value}`));
  const fresh = identifiers.filter((i) => !owned.has(`${i.kind}:${i.value}`));
  await insertIdentifiers(tx.db, machineId, fresh, now());
  if (fresh.length) await tx.emit({ type: 'machine.identifiers_added', machineId, actor, data: { identifiers: fresh } });
  return fresh;
}

/** Normalises and de-duplicates identifiers, dropping firmware defaults; a malformed one names its body field. */
export function normalizeAll(identifiers: { kind: Identifier['kind']; value: string; path?: string }[]): Identifier[] {
  const seen = new Map<string, Identifier>();
  for (const [n, raw] of identifiers.entries()) {
    let identifier: Identifier | null;
    try {
      identifier = normalizeIdentifier(raw.kind, raw.value);
    } catch (error) {
      if (!(error instanceof MusterError)) throw error;
      throw new MusterError(error.code, error.message, {
        errors: [{ path: raw.path ?? `/identifiers/${n}/value`, message: error.errors[0]?.message ?? error.message }],
      });
    }
    if (identifier) seen.set(`${identifier.kind}:${identifier.value}`, identifier);
  }
  return [...seen.values()];
}

function parseLabelFilters(label: MachineListQuery['label']): MachineFilter['labels'] {
  const values = label === undefined ? [] : Array.isArray(label) ? label : [label];
  return values.map((v) => {
    const eq = v.indexOf('=');
    return eq < 0 ? { key: v, value: null } : { key: v.slice(0, eq), value: v.slice(eq + 1) };
  });
}

export class MachineService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async get(ref: string): Promise<Machine> {
    const row = await resolveMachine(this.#tx.db, ref);
    return (await loadMachines(this.#tx.db, [row]))[0];
  }

  async list(query: MachineListQuery): Promise<PageResult<Machine>> {
    const db = this.#tx.db;
    const limit = query.limit ?? 50;
    const filter: MachineFilter = { ...query, dialect: this.#tx.dialect, labels: parseLabelFilters(query.label) };
    if (query.fleet) filter.fleetId = (await findFleet(db, query.fleet))?.id ?? '';
    const { rows, nextCursor } = await listMachineRows(db, filter, limit);
    const page: PageResult<Machine> = { items: await loadMachines(db, rows), next_cursor: nextCursor };
    if (query.total) page.total = await countMachineRows(db, { ...filter, cursor: undefined });
    return page;
  }

  /** Registers a machine by hand (operator), as enrolled. */
  async create(actor: string, input: MachineCreate): Promise<Machine> {
    const identifiers = normalizeAll(input.identifiers);
    if (identifiers.length === 0)
      throw new MusterError('no_usable_identifier', 'Every identifier given is a firmware default; give a real one');
    const id = await this.#tx.run(async (tx) => {
      const time = now();
      const row = newMachineRow(
        identifiers,
        { state: 'enrolled', hostname: input.hostname ?? '', description: input.description ?? '', enrolled_at: time },
        time,
      );
      await insertMachineRow(tx.db, row);
      await claimIdentifiers(tx, row.id, identifiers, actor);
      if (input.labels) await replaceLabels(tx.db, row.id, input.labels);
      if (input.fleet) await this.#joinFleet(tx, row, input.fleet, actor);
      await tx.emit({ type: 'machine.created', machineId: row.id, actor, data: { identifiers } });
      return row.id;
    }, 1);
    return this.get(id);
  }

  /** Partial update (the seed's PUT). Setting a config on an enrolled machine makes it configured. */
  async update(actor: string, ref: string, patch: MachineUpdate): Promise<Machine> {
    const id = await this.#tx.run(async (tx) => {
      const row = await resolveMachine(tx.db, ref);
      await this.applyUpdate(tx, row, patch, actor);
      return row.id;
    }, 1);
    return this.get(id);
  }

  /** The field changes of an update, inside a caller's transaction (shared with bulk). */
  async applyUpdate(tx: Tx, row: MachineRow, patch: MachineUpdate, actor: string): Promise<void> {
    const changes: Partial<MachineRow> = { updated_at: now() };
    if (patch.hostname !== undefined) changes.hostname = patch.hostname ?? '';
    if (patch.description !== undefined) changes.description = patch.description;
    if (patch.nixos_config !== undefined) changes.nixos_config = patch.nixos_config;
    await updateMachineRow(tx.db, row.id, changes);
    if (patch.labels !== undefined) await replaceLabels(tx.db, row.id, patch.labels);
    if (patch.fleet !== undefined) await this.#joinFleet(tx, { ...row, ...changes }, patch.fleet, actor);
    await tx.emit({ type: 'machine.updated', machineId: row.id, actor, data: { fields: Object.keys(patch) } });
    if (patch.nixos_config && row.state === 'enrolled') await transitionInTx(tx, row, 'configured', actor, 'configuration set');
  }

  /** Joins a fleet: the machine takes the fleet's next number (never reused) and, lacking a hostname, NAME-N. */
  async #joinFleet(tx: Tx, row: MachineRow, fleetRef: string | null, actor: string): Promise<void> {
    if (fleetRef === null) {
      await updateMachineRow(tx.db, row.id, { fleet_id: null, fleet_seq: null });
      return;
    }
    const fleet = await findFleet(tx.db, fleetRef);
    if (!fleet) throw new MusterError('not_found', `No fleet ${fleetRef}; create it with muster fleet create ${fleetRef}`);
    if (fleet.id === row.fleet_id) return;
    const seq = await allocateFleetSeq(tx.db, fleet.id);
    await updateMachineRow(tx.db, row.id, { fleet_id: fleet.id, fleet_seq: seq, hostname: row.hostname || `${fleet.name}-${seq}` });
    await tx.emit({ type: 'machine.fleet_joined', machineId: row.id, actor, data: { fleet: fleet.name, fleet_seq: seq } });
  }

  async transition(actor: string, ref: string, to: MachineState, reason = ''): Promise<Machine> {
    const id = await this.#tx.run(async (tx) => {
      const row = await resolveMachine(tx.db, ref);
      await transitionInTx(tx, row, to, actor, reason);
      return row.id;
    }, 1);
    return this.get(id);
  }

  async addIdentifier(actor: string, ref: string, raw: { kind: Identifier['kind']; value: string }): Promise<Machine> {
    const identifier = normalizeIdentifier(raw.kind, raw.value);
    if (!identifier) throw new MusterError('invalid_identifier', `"${raw.value}" is a firmware default and identifies nothing`);
    try {
      const id = await this.#tx.run(async (tx) => {
        const row = await resolveMachine(tx.db, ref);
        await claimIdentifiers(tx, row.id, [identifier], actor);
        return row.id;
      }, 1);
      return this.get(id);
    } catch (error) {
      if (isUniqueViolation(error))
        throw new MusterError('identifier_conflict', `${identifier.kind}:${identifier.value} already identifies another machine`);
      throw error;
    }
  }
}
