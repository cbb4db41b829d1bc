import type { Identifier, IdentifierKind, Machine, MachineListQuery, MachineSortField, MachineState } from '@muster/contract';
import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import { newId, now } from '../../platform/crypto/ids.ts';
import { executeByShape } from '../../platform/db/compiled.ts';
import type { Dialect } from '../../platform/db/connect.ts';
import { eventValues, type NewEvent, notifyEvent } from '../../platform/db/event-store.ts';
import { decodeCursor, encodeCursor } from '../../platform/db/page.ts';
import type { Database, MachineRow } from '../../platform/db/schema.ts';
import type { Tx } from '../../platform/db/transact.ts';

export function findMachineRow(db: Kysely<Database>, id: string) {
  return db.selectFrom('machines').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findMachineIdByIdentifier(db: Kysely<Database>, identifier: Identifier): Promise<string | undefined> {
  const row = await db
    .selectFrom('identifiers')
    .select('machine_id')
    .where('kind', '=', identifier.kind)
    .where('value', '=', identifier.value)
    .executeTakeFirst();
  return row?.machine_id;
}

export async function findIdentifierOwners(db: Kysely<Database>, identifiers: Identifier[]) {
  const query = () =>
    db
      .selectFrom('identifiers')
      .select(['kind', 'value', 'machine_id'])
      .where((eb) => eb.or(identifiers.map((i) => eb.and([eb('kind', '=', i.kind), eb('value', '=', i.value)]))));
  const { rows } = await executeByShape(
    db,
    `identifier owners ${identifiers.length}`,
    query,
    identifiers.flatMap((i) => [i.kind, i.value]),
  );
  return rows;
}

/**
 * The one place a new machine row is made: a fresh id, both times set to `time`, the serial and MAC columns
 * taken from its identifiers, and every other column empty unless given.
 */
export function newMachineRow(
  identifiers: Identifier[],
  fields: Pick<MachineRow, 'state'> & Partial<Omit<MachineRow, 'id' | 'created_at' | 'updated_at'>>,
  time: string = now(),
): MachineRow {
  return {
    id: newId('m'),
    hostname: '',
    description: '',
    service_tag: identifiers.find((i) => i.kind === 'serial')?.value ?? null,
    mac_address: identifiers.find((i) => i.kind === 'mac')?.value ?? null,
    fleet_id: null,
    fleet_seq: null,
    facts: '{}',
    nixos_config: '',
    pi_tree: null,
    profile: null,
    profile_version: null,
    enrolled_at: null,
    last_seen_at: null,
    created_at: time,
    updated_at: time,
    ...fields,
  };
}

/** On PostgreSQL, holds the machine's row until the transaction ends: one writer per machine at a time. */
export async function lockMachineRow(tx: Tx, id: string): Promise<void> {
  if (tx.dialect === 'postgres') await sql`select 1 from machines where id = ${id} for update`.execute(tx.db);
}

export async function insertMachineRow(db: Kysely<Database>, row: MachineRow): Promise<void> {
  const columns = (Object.keys(row) as (keyof MachineRow)[]).filter((column) => row[column] !== undefined);
  await executeByShape(
    db,
    `machine ${columns.join(',')}`,
    () => db.insertInto('machines').values(row),
    columns.map((column) => row[column]),
  );
}

export async function updateMachineRow(db: Kysely<Database>, id: string, patch: Partial<MachineRow>): Promise<void> {
  await db.updateTable('machines').set(patch).where('id', '=', id).execute();
}

/**
 * A new machine with its identifiers and the event that records it. On PostgreSQL one statement (data-modifying
 * CTEs) instead of three round trips: enrollment is the hottest write there is.
 */
export async function insertMachineWithEvent(tx: Tx, row: MachineRow, identifiers: Identifier[], event: NewEvent): Promise<void> {
  if (tx.dialect === 'sqlite') {
    await insertMachineRow(tx.db, row);
    await insertIdentifiers(tx.db, row.id, identifiers, row.created_at);
    await tx.emit(event);
    return;
  }
  const values = eventValues(event);
  await tx.db
    .with('m', (db) => db.insertInto('machines').values(row))
    .with('i', (db) =>
      db.insertInto('identifiers').values(identifiers.map((i) => ({ ...i, machine_id: row.id, created_at: row.created_at }))),
    )
    .with('e', (db) => db.insertInto('events').values(values).returningAll())
    .selectFrom('e')
    .select(notifyEvent.as('notified'))
    .execute();
}

export async function insertIdentifiers(
  db: Kysely<Database>,
  machineId: string,
  identifiers: Identifier[],
  createdAt: string,
): Promise<void> {
  if (identifiers.length === 0) return;
  const rows = identifiers.map((i) => ({ kind: i.kind, value: i.value, machine_id: machineId, created_at: createdAt }));
  await executeByShape(
    db,
    `identifiers ${rows.length}`,
    () => db.insertInto('identifiers').values(rows),
    rows.flatMap((r) => [r.kind, r.value, r.machine_id, r.created_at]),
  );
}

export async function replaceLabels(db: Kysely<Database>, machineId: string, labels: Record<string, string>): Promise<void> {
  await db.deleteFrom('machine_labels').where('machine_id', '=', machineId).execute();
  const rows = Object.entries(labels).map(([key, value]) => ({ machine_id: machineId, key, value }));
  if (rows.length > 0) await db.insertInto('machine_labels').values(rows).execute();
}

/** A machine's labels as one object, key → value. */
export async function labelsOfMachine(db: Kysely<Database>, machineId: string): Promise<Record<string, string>> {
  const rows = await db.selectFrom('machine_labels').select(['key', 'value']).where('machine_id', '=', machineId).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

export async function allocateFleetSeq(db: Kysely<Database>, fleetId: string): Promise<number> {
  const row = await db
    .updateTable('fleets')
    .set((eb) => ({ next_seq: eb('next_seq', '+', 1) }))
    .where('id', '=', fleetId)
    .returning('next_seq')
    .executeTakeFirstOrThrow();
  return row.next_seq - 1;
}

/** Machines as the API shows them: the row with its fleet name, labels and identifiers. */
export async function loadMachines(db: Kysely<Database>, rows: MachineRow[]): Promise<Machine[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const fleetIds = [...new Set(rows.map((r) => r.fleet_id).filter((f): f is string => f !== null))];
  const [labels, identifiers, fleets] = await Promise.all([
    db.selectFrom('machine_labels').selectAll().where('machine_id', 'in', ids).execute(),
    db
      .selectFrom('identifiers')
      .select(['machine_id', 'kind', 'value'])
      .where('machine_id', 'in', ids)
      .orderBy('kind')
      .orderBy('value')
      .execute(),
    fleetIds.length ? db.selectFrom('fleets').select(['id', 'name']).where('id', 'in', fleetIds).execute() : [],
  ]);
  const fleetName = new Map(fleets.map((f) => [f.id, f.name]));
  return rows.map((row) =>
    machineFromRow(row, {
      fleet: row.fleet_id ? (fleetName.get(row.fleet_id) ?? null) : null,
      labels: Object.fromEntries(labels.filter((l) => l.machine_id === row.id).map((l) => [l.key, l.value])),
      identifiers: identifiers.filter((i) => i.machine_id === row.id).map((i) => ({ kind: i.kind as IdentifierKind, value: i.value })),
    }),
  );
}

/**
 * A machine as the API shows it, from its row and what other tables hold for it. `hardware`: the row's facts
 * already parsed, when the caller holds them (a new machine's), instead of parsing `facts` again.
 */
export function machineFromRow(
  row: MachineRow,
  related: Pick<Machine, 'fleet' | 'labels' | 'identifiers'> & { hardware?: Machine['hardware'] },
): Machine {
  return {
    id: row.id,
    state: row.state as MachineState,
    status: row.state as MachineState,
    hostname: row.hostname || null,
    description: row.description,
    service_tag: row.service_tag,
    mac_address: row.mac_address,
    fleet: related.fleet,
    fleet_seq: row.fleet_seq,
    profile: row.profile,
    profile_version: row.profile_version,
    labels: related.labels,
    identifiers: related.identifiers,
    hardware: related.hardware ?? JSON.parse(row.facts),
    nixos_config: row.nixos_config,
    enrolled_at: row.enrolled_at,
    last_seen_at: row.last_seen_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export interface MachineFilter extends Omit<MachineListQuery, 'fleet' | 'label'> {
  dialect: Dialect;
  fleetId?: string | null;
  labels: { key: string; value: string | null }[];
}

// A missing last_seen_at sorts as '' so that both databases order it alike (hostname is '' already).
// created_at sorts as the id does (ids begin with their creation time), which has an index.
const sortExpression = (field: MachineSortField) =>
  field === 'last_seen_at'
    ? sql<string>`coalesce(m.${sql.ref(field)}, '')`
    : sql<string>`m.${sql.ref(field === 'created_at' ? 'id' : field)}`;

function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** FTS5's trigram index answers LIKE for three or more characters without wildcards of their own. */
const trigramSearch = (q: string) => q.length >= 3 && !/[\\%_]/.test(q);

/** SQLite: ids whose hostname or an identifier contains q, from the trigram tables (migration 0002). */
function ftsMatches(eb: ExpressionBuilder<Database & { m: MachineRow }, 'm'>, q: string) {
  const pattern = `%${q}%`;
  return eb
    .selectFrom('identifiers as i')
    .select('i.machine_id as id')
    .where(sql<SqlBool>`i.rowid in (select rowid from identifiers_search where value like ${pattern})`)
    .unionAll(
      eb
        .selectFrom('machines as t')
        .select('t.id')
        .where(sql<SqlBool>`t.rowid in (select rowid from machines_search where hostname like ${pattern})`),
    )
    .unionAll(eb.selectFrom('machines as x').select('x.id').where('x.id', '=', q));
}

/**
 * ids whose hostname or an identifier contains q, case-insensitively. On PostgreSQL the pg_trgm indexes
 * serve these LIKEs; otherwise this is one scan of the (hostname, id) index and one of identifiers.
 */
function likeMatches(eb: ExpressionBuilder<Database & { m: MachineRow }, 'm'>, q: string) {
  const pattern = likePattern(q);
  const like = (column: string) => sql<SqlBool>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
  return eb
    .selectFrom('machines as t')
    .select('t.id')
    .where((t) => t.or([t('t.id', '=', q), like('t.hostname')]))
    .unionAll(eb.selectFrom('identifiers as i').select('i.machine_id as id').where(like('i.value')));
}

function filterQuery(db: Kysely<Database>, filter: MachineFilter) {
  let query = db.selectFrom('machines as m');
  const state = filter.state ?? filter.status;
  if (state) query = query.where('m.state', '=', state);
  if (filter.fleetId !== undefined) query = query.where('m.fleet_id', filter.fleetId === null ? 'is' : '=', filter.fleetId);
  if (filter.group) {
    const group = filter.group;
    query = query.where((eb) =>
      eb.exists(
        eb
          .selectFrom('group_members as gm')
          .innerJoin('groups as g', 'g.id', 'gm.group_id')
          .select('gm.machine_id')
          .whereRef('gm.machine_id', '=', 'm.id')
          .where(group.startsWith('g_') ? 'g.id' : 'g.name', '=', group),
      ),
    );
  }
  for (const label of filter.labels) {
    query = query.where((eb) => {
      let sub = eb
        .selectFrom('machine_labels as l')
        .select('l.machine_id')
        .whereRef('l.machine_id', '=', 'm.id')
        .where('l.key', '=', label.key);
      if (label.value !== null) sub = sub.where('l.value', '=', label.value);
      return eb.exists(sub);
    });
  }
  if (filter.q) {
    const q = filter.q;
    query = query.where((eb) => eb('m.id', 'in', trigramSearch(q) && filter.dialect === 'sqlite' ? ftsMatches(eb, q) : likeMatches(eb, q)));
  }
  return query;
}

export async function listMachineRows(db: Kysely<Database>, filter: MachineFilter, limit: number) {
  const field = filter.sort === 'created_at' ? 'id' : (filter.sort ?? 'id');
  const desc = filter.order === 'desc';
  const key = sortExpression(field);
  let query = filterQuery(db, filter).selectAll('m').select(key.as('sort_key'));
  if (filter.cursor) {
    const [value, id] = decodeCursor(filter.cursor, 2) as [string, string];
    const cmp = desc ? sql.raw('<') : sql.raw('>');
    query = query.where(
      field === 'id'
        ? sql<SqlBool>`m.id ${cmp} ${id}`
        : (sql<SqlBool>`(${key} ${cmp} ${value} or (${key} = ${value} and m.id ${cmp} ${id}))` as Expression<SqlBool>),
    );
  }
  const direction = desc ? 'desc' : 'asc';
  if (field !== 'id') query = query.orderBy(key, direction);
  const rows = await query
    .orderBy('m.id', direction)
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const page = (more ? rows.slice(0, limit) : rows).map(({ sort_key, ...row }) => ({ row: row as MachineRow, sortKey: sort_key }));
  const last = page.at(-1);
  return { rows: page.map((p) => p.row), nextCursor: more && last ? encodeCursor([last.sortKey, last.row.id]) : null };
}

export async function countMachineRows(db: Kysely<Database>, filter: MachineFilter): Promise<number> {
  const row = await filterQuery(db, filter)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function countMachinesByState(db: Kysely<Database>): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('machines')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

/**
 * On retirement: revokes the machine's certificates that are not revoked yet, frees the tunnel port of its fleet
 * slot (the slot stays, released, as history) and its pool address. Returns what it revoked and freed.
 */
export async function releaseCredentials(
  db: Kysely<Database>,
  machineId: string,
  at: string,
  reason: string,
): Promise<{ revoked: string[]; tunnelPorts: number[]; addresses: string[] }> {
  const certificates = await db
    .selectFrom('certificates')
    .select('serial')
    .where('machine_id', '=', machineId)
    .where('revoked_at', 'is', null)
    .execute();
  if (certificates.length) {
    await db
      .updateTable('certificates')
      .set({ revoked_at: at, revoke_reason: reason })
      .where('machine_id', '=', machineId)
      .where('revoked_at', 'is', null)
      .execute();
  }
  const slots = await db
    .selectFrom('fleet_slots')
    .select('tunnel_port')
    .where('machine_id', '=', machineId)
    .where('tunnel_port', 'is not', null)
    .execute();
  if (slots.length) {
    await db.updateTable('fleet_slots').set({ tunnel_port: null, released_at: at }).where('machine_id', '=', machineId).execute();
  }
  const addresses = await db.selectFrom('ip_allocations').select('address').where('machine_id', '=', machineId).execute();
  if (addresses.length) await db.deleteFrom('ip_allocations').where('machine_id', '=', machineId).execute();
  return {
    revoked: certificates.map((c) => c.serial),
    tunnelPorts: slots.map((s) => Number(s.tunnel_port)),
    addresses: addresses.map((a) => a.address),
  };
}
