import type { Kysely } from 'kysely';
import { decodeCursor } from '../../platform/db/page.ts';
import type { Database, FleetRow } from '../../platform/db/schema.ts';

export function findFleet(db: Kysely<Database>, idOrName: string) {
  return db
    .selectFrom('fleets')
    .selectAll()
    .where(idOrName.startsWith('f_') ? 'id' : 'name', '=', idOrName)
    .executeTakeFirst();
}

/** Fleets in name order, after a cursor. */
export function fleetRows(db: Kysely<Database>, cursor: string | undefined, limit: number) {
  let query = db
    .selectFrom('fleets')
    .selectAll()
    .orderBy('name')
    .limit(limit + 1);
  if (cursor) query = query.where('name', '>', String(decodeCursor(cursor, 1)[0]));
  return query.execute();
}

export async function insertFleet(db: Kysely<Database>, row: FleetRow): Promise<void> {
  await db.insertInto('fleets').values(row).execute();
}

export async function updateFleet(db: Kysely<Database>, id: string, patch: Partial<Omit<FleetRow, 'id'>>): Promise<void> {
  await db.updateTable('fleets').set(patch).where('id', '=', id).execute();
}

export async function deleteFleet(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('fleets').where('id', '=', id).execute();
}
