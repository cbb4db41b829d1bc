import type { Kysely } from 'kysely';
import type { Database, IdempotencyKeyRow } from '../../platform/db/schema.ts';

export function findIdempotencyKey(db: Kysely<Database>, userId: string, key: string) {
  return db.selectFrom('idempotency_keys').selectAll().where('user_id', '=', userId).where('key', '=', key).executeTakeFirst();
}

/** Claims a key for a request that is starting (status 0); throws a unique violation when it is taken. */
export async function insertIdempotencyKey(db: Kysely<Database>, row: IdempotencyKeyRow): Promise<void> {
  await db.insertInto('idempotency_keys').values(row).execute();
}

export async function finishIdempotencyKey(
  db: Kysely<Database>,
  userId: string,
  key: string,
  status: number,
  response: string,
): Promise<void> {
  await db.updateTable('idempotency_keys').set({ status, response }).where('user_id', '=', userId).where('key', '=', key).execute();
}

export async function deleteIdempotencyKey(db: Kysely<Database>, userId: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('user_id', '=', userId).where('key', '=', key).execute();
}
