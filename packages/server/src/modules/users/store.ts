import type { Kysely } from 'kysely';
import type { Database, UserRow } from '../../platform/db/schema.ts';

export function findUserById(db: Kysely<Database>, id: string) {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findUserByName(db: Kysely<Database>, username: string) {
  return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
}

export async function insertUser(db: Kysely<Database>, row: UserRow): Promise<void> {
  await db.insertInto('users').values(row).execute();
}

export async function updateUserRow(db: Kysely<Database>, id: string, patch: Partial<UserRow>): Promise<void> {
  await db.updateTable('users').set(patch).where('id', '=', id).execute();
}

export async function deleteUserRow(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('users').where('id', '=', id).execute();
}

export function listUserRows(db: Kysely<Database>, after: string | null, limit: number) {
  let query = db
    .selectFrom('users')
    .selectAll()
    .orderBy('id')
    .limit(limit + 1);
  if (after) query = query.where('id', '>', after);
  return query.execute();
}

export async function countUsers(db: Kysely<Database>, role?: string): Promise<number> {
  let query = db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n'));
  if (role) query = query.where('role', '=', role);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

export async function anyUserExists(db: Kysely<Database>): Promise<boolean> {
  return (await db.selectFrom('users').select('id').limit(1).executeTakeFirst()) !== undefined;
}
