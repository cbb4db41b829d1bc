import type { Profile, ProfileSpec, ProfileVersion } from '@muster/contract';
import { type Kysely, sql } from 'kysely';
import type { Database, ProfileRow, ProfileVersionRow } from '../../platform/db/schema.ts';

export function versionFromRow(row: ProfileVersionRow): ProfileVersion {
  return {
    name: row.profile,
    version: row.version,
    spec: JSON.parse(row.spec) as ProfileSpec,
    digest: row.digest,
    actor: row.actor,
    comment: row.comment,
    created_at: row.created_at,
  };
}

export function findProfileRow(db: Kysely<Database>, name: string) {
  return db.selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function findVersion(db: Kysely<Database>, name: string, version: number): Promise<ProfileVersion | null> {
  const row = await db
    .selectFrom('profile_versions')
    .selectAll()
    .where('profile', '=', name)
    .where('version', '=', version)
    .executeTakeFirst();
  return row ? versionFromRow(row) : null;
}

/** Every version of a profile, newest first. */
export async function listVersions(db: Kysely<Database>, name: string): Promise<ProfileVersion[]> {
  const rows = await db.selectFrom('profile_versions').selectAll().where('profile', '=', name).orderBy('version', 'desc').execute();
  return rows.map(versionFromRow);
}

/** Profiles with their current version's description and how many machines hold each. */
export async function listProfiles(db: Kysely<Database>, name?: string): Promise<Profile[]> {
  let query = db
    .selectFrom('profiles as p')
    .innerJoin('profile_versions as v', (j) => j.onRef('v.profile', '=', 'p.name').onRef('v.version', '=', 'p.version'))
    .select(['p.name', 'p.version', 'p.created_at', 'p.updated_at', 'v.spec'])
    .select((eb) =>
      eb
        .selectFrom('machines as m')
        .select(sql<number>`count(*)`.as('n'))
        .whereRef('m.profile', '=', 'p.name')
        .where('m.state', '!=', 'retired')
        .as('machine_count'),
    )
    .orderBy('p.name');
  if (name !== undefined) query = query.where('p.name', '=', name);
  return (await query.execute()).map((row) => ({
    name: row.name,
    version: row.version,
    description: (JSON.parse(row.spec) as ProfileSpec).description ?? '',
    machine_count: Number(row.machine_count ?? 0),
    created_at: row.created_at,
    updated_at: row.updated_at,
  }));
}

/**
 * Takes the next version number of a profile, making the profile when it is new. The update takes the row's
 * lock, so two applies at once get two numbers (PostgreSQL), and SQLite has one writer anyway.
 */
export async function nextVersion(db: Kysely<Database>, name: string, at: string): Promise<{ version: number; created: boolean }> {
  const updated = await db
    .updateTable('profiles')
    .set((eb) => ({ version: eb('version', '+', 1), updated_at: at }))
    .where('name', '=', name)
    .returning('version')
    .executeTakeFirst();
  if (updated) return { version: updated.version, created: false };
  const row: ProfileRow = { name, version: 1, created_at: at, updated_at: at };
  await db.insertInto('profiles').values(row).execute();
  return { version: 1, created: true };
}

export async function insertVersion(db: Kysely<Database>, row: ProfileVersionRow): Promise<void> {
  await db.insertInto('profile_versions').values(row).execute();
}

export async function currentVersion(db: Kysely<Database>, name: string): Promise<ProfileVersion | null> {
  const row = await db
    .selectFrom('profiles as p')
    .innerJoin('profile_versions as v', (j) => j.onRef('v.profile', '=', 'p.name').onRef('v.version', '=', 'p.version'))
    .selectAll('v')
    .where('p.name', '=', name)
    .executeTakeFirst();
  return row ? versionFromRow(row) : null;
}

/** What refers to a profile by name: machines (not retired), rules and enrollment tokens. */
export async function profileReferences(
  db: Kysely<Database>,
  name: string,
): Promise<{ machines: number; rules: string[]; tokens: string[] }> {
  const machines = await db
    .selectFrom('machines')
    .select(sql<number>`count(*)`.as('n'))
    .where('profile', '=', name)
    .where('state', '!=', 'retired')
    .executeTakeFirstOrThrow();
  const rules = await db.selectFrom('rules').select('name').where('profile', '=', name).execute();
  const tokens = await db
    .selectFrom('enrollment_tokens')
    .select('name')
    .where('profile', '=', name)
    .where('revoked_at', 'is', null)
    .execute();
  return { machines: Number(machines.n), rules: rules.map((r) => r.name), tokens: tokens.map((t) => t.name) };
}

export async function deleteProfileRows(db: Kysely<Database>, name: string): Promise<void> {
  await db.deleteFrom('profile_versions').where('profile', '=', name).execute();
  await db.updateTable('machines').set({ profile: null, profile_version: null }).where('profile', '=', name).execute();
  await db.deleteFrom('profiles').where('name', '=', name).execute();
}

/** Machines on a profile at a version other than `version`, with their labels, for a rollout. */
export async function machinesBehind(db: Kysely<Database>, name: string, version: number) {
  const machines = await db
    .selectFrom('machines')
    .select(['id', 'hostname', 'profile_version'])
    .where('profile', '=', name)
    .where('state', '!=', 'retired')
    .where((eb) => eb.or([eb('profile_version', 'is', null), eb('profile_version', '!=', version)]))
    .orderBy('id')
    .execute();
  const labels = await db
    .selectFrom('machine_labels as l')
    .innerJoin('machines as m', 'm.id', 'l.machine_id')
    .select(['l.machine_id', 'l.key', 'l.value'])
    .where('m.profile', '=', name)
    .execute();
  return machines.map((m) => ({
    ...m,
    labels: Object.fromEntries(labels.filter((l) => l.machine_id === m.id).map((l) => [l.key, l.value])),
  }));
}

export async function setMachineProfileVersion(
  db: Kysely<Database>,
  machineId: string,
  name: string,
  version: number,
  at: string,
): Promise<void> {
  await db.updateTable('machines').set({ profile: name, profile_version: version, updated_at: at }).where('id', '=', machineId).execute();
}

export function bootScriptExists(db: Kysely<Database>, name: string) {
  return db.selectFrom('boot_scripts').select('name').where('name', '=', name).executeTakeFirst();
}

export function endpointExists(db: Kysely<Database>, name: string) {
  return db.selectFrom('endpoints').select('name').where('name', '=', name).executeTakeFirst();
}

export function findMachineSecret(db: Kysely<Database>, machineId: string) {
  return db.selectFrom('machine_secrets').selectAll().where('machine_id', '=', machineId).executeTakeFirst();
}

export async function saveMachineSecret(db: Kysely<Database>, machineId: string, sealed: string, at: string): Promise<void> {
  await db
    .insertInto('machine_secrets')
    .values({ machine_id: machineId, secret: sealed, created_at: at, updated_at: at })
    .onConflict((c) => c.column('machine_id').doUpdateSet({ secret: sealed, updated_at: at }))
    .execute();
}

/** Stores a machine's first secret; false when it has one already (another rendering stored it first). */
export async function insertMachineSecretIfAbsent(db: Kysely<Database>, machineId: string, sealed: string, at: string): Promise<boolean> {
  const result = await db
    .insertInto('machine_secrets')
    .values({ machine_id: machineId, secret: sealed, created_at: at, updated_at: at })
    .onConflict((c) => c.column('machine_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** The door a machine first came through, from the event that made it; null when none says. */
export async function firstDoorOf(db: Kysely<Database>, machineId: string): Promise<string | null> {
  const row = await db
    .selectFrom('events')
    .select(['type', 'data'])
    .where('machine_id', '=', machineId)
    .where('type', 'in', ['machine.discovered', 'machine.enrolled', 'machine.claimed', 'machine.created', 'machine.staged'])
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  if (!row) return null;
  if (row.type === 'machine.enrolled') return 'enroll';
  if (row.type === 'machine.claimed') return 'claim';
  const door = (JSON.parse(row.data) as { door?: string }).door;
  return door === 'pi' || door === 'ipxe' ? door : null;
}
