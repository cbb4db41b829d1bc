import type { Kysely } from 'kysely';
import { decodeCursor } from '../../platform/db/page.ts';
import type { Database, GroupRow } from '../../platform/db/schema.ts';

/** A group by id (g_…) or by name. */
export function findGroupRow(db: Kysely<Database>, ref: string) {
  return db
    .selectFrom('groups')
    .selectAll()
    .where(ref.startsWith('g_') ? 'id' : 'name', '=', ref)
    .executeTakeFirst();
}

/** Groups in name order, after a cursor. */
export function groupRows(db: Kysely<Database>, cursor: string | undefined, limit: number) {
  let query = db
    .selectFrom('groups')
    .selectAll()
    .orderBy('name')
    .limit(limit + 1);
  if (cursor) query = query.where('name', '>', String(decodeCursor(cursor, 1)[0]));
  return query.execute();
}

export async function insertGroup(db: Kysely<Database>, row: GroupRow): Promise<void> {
  await db.insertInto('groups').values(row).execute();
}

export async function updateGroup(db: Kysely<Database>, id: string, patch: Partial<Omit<GroupRow, 'id'>>): Promise<void> {
  await db.updateTable('groups').set(patch).where('id', '=', id).execute();
}

export async function deleteGroup(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('groups').where('id', '=', id).execute();
}

/** Adds a member; false when it already was one. */
export async function addMember(db: Kysely<Database>, groupId: string, machineId: string, at: string): Promise<boolean> {
  const inserted = await db
    .insertInto('group_members')
    .values({ group_id: groupId, machine_id: machineId, added_at: at })
    .onConflict((oc) => oc.columns(['group_id', 'machine_id']).doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Removes a member; false when it was none. */
export async function removeMember(db: Kysely<Database>, groupId: string, machineId: string): Promise<boolean> {
  const deleted = await db
    .deleteFrom('group_members')
    .where('group_id', '=', groupId)
    .where('machine_id', '=', machineId)
    .executeTakeFirst();
  return Number(deleted.numDeletedRows) > 0;
}

/** Up to `limit` member ids, in order. */
export async function memberIdsOf(db: Kysely<Database>, groupId: string, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('group_members')
    .select('machine_id')
    .where('group_id', '=', groupId)
    .orderBy('machine_id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.machine_id);
}
