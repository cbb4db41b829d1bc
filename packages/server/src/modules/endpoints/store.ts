import type { ProfileSpec } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { Database, EndpointRow } from '../../platform/db/schema.ts';

export function findEndpointRow(db: Kysely<Database>, name: string) {
  return db.selectFrom('endpoints').selectAll().where('name', '=', name).executeTakeFirst();
}

export function listEndpointRows(db: Kysely<Database>) {
  return db.selectFrom('endpoints').selectAll().orderBy('name').execute();
}

export async function upsertEndpoint(db: Kysely<Database>, row: EndpointRow): Promise<void> {
  await db
    .insertInto('endpoints')
    .values(row)
    .onConflict((c) => c.column('name').doUpdateSet({ url: row.url, credential: row.credential, updated_at: row.updated_at }))
    .execute();
}

export async function deleteEndpointRow(db: Kysely<Database>, name: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom('endpoints').where('name', '=', name).executeTakeFirst();
  return Number(numDeletedRows) === 1;
}

/** Every profile's current spec: what decides whether an endpoint is still in use. */
export async function currentProfileSpecs(db: Kysely<Database>): Promise<{ name: string; spec: ProfileSpec }[]> {
  const rows = await db
    .selectFrom('profiles as p')
    .innerJoin('profile_versions as v', (j) => j.onRef('v.profile', '=', 'p.name').onRef('v.version', '=', 'p.version'))
    .select(['p.name', 'v.spec'])
    .orderBy('p.name')
    .execute();
  return rows.map((row) => ({ name: row.name, spec: JSON.parse(row.spec) as ProfileSpec }));
}
