import type { Kysely } from 'kysely';
import { now } from '../crypto/ids.ts';
import { isSealed, type Keyring, sealedKeyId } from '../crypto/keyring.ts';
import { randomCode } from '../crypto/secrets.ts';
import type { Database } from './schema.ts';

/**
 * A secret generated once and shared through the database, so that every replica uses the same one; stored sealed
 * with the master key (docs/secrets.md). One stored in the clear by an earlier version is sealed now.
 */
export async function generatedSecret(db: Kysely<Database>, keyring: Keyring, key: string): Promise<string> {
  await db
    .insertInto('settings')
    .values({ key, value: keyring.seal(randomCode(48), key), updated_at: now() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const stored = (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow()).value;
  if (isSealed(stored)) return keyring.open(stored, key);
  await db
    .updateTable('settings')
    .set({ value: keyring.seal(stored, key), updated_at: now() })
    .where('key', '=', key)
    .where('value', '=', stored)
    .execute();
  return stored;
}

/** The settings that hold sealed secrets, by name. */
export async function listSealedSettings(db: Kysely<Database>): Promise<{ key: string; value: string }[]> {
  return (await db.selectFrom('settings').select(['key', 'value']).orderBy('key').execute()).filter((row) => isSealed(row.value));
}

/**
 * Every sealed secret by the name it is sealed under: the sealed settings, the endpoints' credentials
 * (endpoint:<name>) and the machine secrets (machine_secret:<id>).
 */
export async function listSealedSecrets(db: Kysely<Database>): Promise<{ key: string; value: string }[]> {
  const endpoints = await db
    .selectFrom('endpoints')
    .select(['name', 'credential'])
    .where('credential', 'is not', null)
    .orderBy('name')
    .execute();
  const machines = await db.selectFrom('machine_secrets').select(['machine_id', 'secret']).orderBy('machine_id').execute();
  return [
    ...(await listSealedSettings(db)),
    ...endpoints.map((row) => ({ key: `endpoint:${row.name}`, value: row.credential as string })),
    ...machines.map((row) => ({ key: `machine_secret:${row.machine_id}`, value: row.secret })),
  ];
}

/** Seals every sealed secret again with the keyring's current key; returns which, and their keys before. Run in one transaction. */
export async function resealSecrets(db: Kysely<Database>, keyring: Keyring): Promise<{ key: string; from: string | null }[]> {
  const resealed: { key: string; from: string | null }[] = [];
  for (const row of await listSealedSecrets(db)) {
    const from = sealedKeyId(row.value);
    const value = keyring.seal(keyring.open(row.value, row.key), row.key);
    const updated_at = now();
    if (row.key.startsWith('endpoint:'))
      await db.updateTable('endpoints').set({ credential: value }).where('name', '=', row.key.slice('endpoint:'.length)).execute();
    else if (row.key.startsWith('machine_secret:'))
      await db
        .updateTable('machine_secrets')
        .set({ secret: value, updated_at })
        .where('machine_id', '=', row.key.slice('machine_secret:'.length))
        .execute();
    else await db.updateTable('settings').set({ value, updated_at }).where('key', '=', row.key).execute();
    resealed.push({ key: row.key, from });
  }
  return resealed;
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

/** Writes a setting unless it exists; true when this call wrote it. */
export async function insertSettingIfAbsent(db: Kysely<Database>, key: string, value: string): Promise<boolean> {
  const result = await db
    .insertInto('settings')
    .values({ key, value, updated_at: now() })
    .onConflict((oc) => oc.column('key').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}
