import type { Kysely } from 'kysely';
import { decodeCursor } from '../../platform/db/page.ts';
import type { ApiTokenRow, Database } from '../../platform/db/schema.ts';

export async function insertToken(db: Kysely<Database>, row: ApiTokenRow): Promise<void> {
  await db.insertInto('api_tokens').values(row).execute();
}

/** Tokens in id order after a cursor; of one user only when `userId` is given. */
export function tokenRows(db: Kysely<Database>, options: { userId?: string; cursor?: string; limit: number }) {
  let query = db
    .selectFrom('api_tokens')
    .selectAll()
    .orderBy('id')
    .limit(options.limit + 1);
  if (options.userId) query = query.where('user_id', '=', options.userId);
  if (options.cursor) query = query.where('id', '>', String(decodeCursor(options.cursor, 1)[0]));
  return query.execute();
}

export function findTokenRow(db: Kysely<Database>, id: string) {
  return db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The tokens made with any of these tokens. */
export function childTokens(db: Kysely<Database>, parents: string[]) {
  return db.selectFrom('api_tokens').select(['id', 'name', 'revoked_at']).where('parent_id', 'in', parents).execute();
}

export async function revokeTokens(db: Kysely<Database>, ids: string[], at: string): Promise<void> {
  await db.updateTable('api_tokens').set({ revoked_at: at }).where('id', 'in', ids).execute();
}

/** A token by the hash of its secret, with its user's name and role. */
export function findTokenBySecretHash(db: Kysely<Database>, hash: string) {
  return db
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user_id')
    .selectAll('api_tokens')
    .select(['users.username', 'users.role as user_role'])
    .where('token_hash', '=', hash)
    .executeTakeFirst();
}

export async function touchToken(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}
