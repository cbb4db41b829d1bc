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

export async function readSetting(db: Kysely<Database>, key: string): Promise<string | undefined> {
  return (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
}

export async function writeSetting(db: Kysely<Database>, key: string, value: string): Promise<void> {
  const updated_at = now();
  await db
    .insertInto('settings')
    .values({ key, value, updated_at })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at }))
    .execute();
}

/** Deletes a setting if it still holds `value`; false when it did not (someone else took it first). */
export async function takeSetting(db: Kysely<Database>, key: string, value: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom('settings').where('key', '=', key).where('value', '=', value).executeTakeFirst();
  return Number(numDeletedRows) === 1;
}
