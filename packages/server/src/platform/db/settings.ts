import type { Kysely } from 'kysely';
import { now } from '../crypto/ids.ts';
import { randomCode } from '../crypto/secrets.ts';
import type { Database } from './schema.ts';

/** A secret generated once and shared through the database, so that every replica uses the same one. */
export async function generatedSecret(db: Kysely<Database>, key: string): Promise<string> {
  await db
    .insertInto('settings')
    .values({ key, value: randomCode(48), updated_at: now() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
  return row.value;
}
