import { type Kysely, sql } from 'kysely';
import { decodeCursor } from '../../platform/db/page.ts';
import type { BootRequestRow, BootScriptRow, BootSessionRow, Database } from '../../platform/db/schema.ts';

// Boot sessions and their requests (the timeline)

/** The machine's session whose last request is at or after `since`, if any. */
export function findOpenSession(db: Kysely<Database>, machineId: string, since: string) {
  return db
    .selectFrom('boot_sessions')
    .select('id')
    .where('machine_id', '=', machineId)
    .where('last_at', '>=', since)
    .orderBy('last_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function insertSession(db: Kysely<Database>, row: BootSessionRow): Promise<void> {
  await db.insertInto('boot_sessions').values(row).execute();
}

/** Adds one request to a session's totals; its last time only moves forward. */
export async function extendSession(db: Kysely<Database>, id: string, at: string, bytes: number, errors: number): Promise<void> {
  await db
    .updateTable('boot_sessions')
    .set((eb) => ({
      last_at: sql<string>`case when last_at > ${at} then last_at else ${at} end`,
      requests: eb('requests', '+', 1),
      bytes: eb('bytes', '+', bytes),
      errors: eb('errors', '+', errors),
    }))
    .where('id', '=', id)
    .execute();
}

export function lastRequest(db: Kysely<Database>, sessionId: string) {
  return db
    .selectFrom('boot_requests')
    .select(['seq', 'door', 'path', 'status'])
    .where('session_id', '=', sessionId)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Counts a repeat of a request row. */
export async function repeatRequest(db: Kysely<Database>, sessionId: string, seq: number, bytes: number, at: string): Promise<void> {
  await db
    .updateTable('boot_requests')
    .set((eb) => ({ count: eb('count', '+', 1), bytes: eb('bytes', '+', bytes), last_at: at }))
    .where('session_id', '=', sessionId)
    .where('seq', '=', seq)
    .execute();
}

export async function insertRequest(db: Kysely<Database>, row: BootRequestRow): Promise<void> {
  await db.insertInto('boot_requests').values(row).execute();
}

/** A machine's sessions, newest first, after a cursor of [started_at, id]. */
export function sessionRows(db: Kysely<Database>, machineId: string, cursor: string | undefined, limit: number) {
  let query = db
    .selectFrom('boot_sessions')
    .selectAll()
    .where('machine_id', '=', machineId)
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (cursor) {
    const [startedAt, id] = decodeCursor(cursor, 2) as [string, string];
    query = query.where((eb) => eb.or([eb('started_at', '<', startedAt), eb.and([eb('started_at', '=', startedAt), eb('id', '<', id)])]));
  }
  return query.execute();
}

export function findSessionRow(db: Kysely<Database>, id: string) {
  return db.selectFrom('boot_sessions').selectAll().where('id', '=', id).executeTakeFirst();
}

export function sessionRequests(db: Kysely<Database>, sessionId: string) {
  return db.selectFrom('boot_requests').selectAll().where('session_id', '=', sessionId).orderBy('seq').execute();
}

// iPXE script templates

export function findScriptRow(db: Kysely<Database>, name: string) {
  return db.selectFrom('boot_scripts').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function saveScript(db: Kysely<Database>, row: BootScriptRow): Promise<void> {
  const { body, updated_at } = row;
  await db
    .insertInto('boot_scripts')
    .values(row)
    .onConflict((c) => c.column('name').doUpdateSet({ body, updated_at }))
    .execute();
}

/** Deletes a script; false when there was none. */
export async function deleteScript(db: Kysely<Database>, name: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom('boot_scripts').where('name', '=', name).executeTakeFirst();
  return Number(numDeletedRows) > 0;
}
