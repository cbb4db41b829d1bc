import { type Kysely, sql } from 'kysely';
import type { ArtifactNameRow, ArtifactRow, Database } from '../../platform/db/schema.ts';

export function findArtifactRow(db: Kysely<Database>, sha256: string): Promise<ArtifactRow | undefined> {
  return db.selectFrom('artifacts').selectAll().where('sha256', '=', sha256).executeTakeFirst();
}

export function findNameRow(db: Kysely<Database>, name: string): Promise<ArtifactNameRow | undefined> {
  return db.selectFrom('artifact_names').selectAll().where('name', '=', name).executeTakeFirst();
}

/** The published names of each artifact, sorted. */
export async function namesOf(db: Kysely<Database>, sha256s: string[]): Promise<Map<string, string[]>> {
  const names = new Map<string, string[]>(sha256s.map((s) => [s, []]));
  if (sha256s.length === 0) return names;
  const rows = await db.selectFrom('artifact_names').select(['name', 'sha256']).where('sha256', 'in', sha256s).orderBy('name').execute();
  for (const row of rows) names.get(row.sha256)?.push(row.name);
  return names;
}

/** Newest first; the cursor is the (created_at, sha256) of the last row of the previous page. */
export function artifactRowsPage(db: Kysely<Database>, after: [string, string] | null, limit: number): Promise<ArtifactRow[]> {
  let query = db
    .selectFrom('artifacts')
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('sha256', 'desc')
    .limit(limit + 1);
  if (after) {
    const [createdAt, sha256] = after;
    query = query.where((eb) =>
      eb.or([eb('created_at', '<', createdAt), eb.and([eb('created_at', '=', createdAt), eb('sha256', '<', sha256)])]),
    );
  }
  return query.execute();
}

export interface NameWithSize extends ArtifactNameRow {
  size: number;
}

export function nameRowsPage(db: Kysely<Database>, after: string | null, limit: number): Promise<NameWithSize[]> {
  let query = db
    .selectFrom('artifact_names as n')
    .innerJoin('artifacts as a', 'a.sha256', 'n.sha256')
    .select(['n.name', 'n.sha256', 'n.updated_at', 'a.size'])
    .orderBy('n.name')
    .limit(limit + 1);
  if (after !== null) query = query.where('n.name', '>', after);
  return query.execute();
}

export async function countRows(db: Kysely<Database>, table: 'artifacts' | 'artifact_names'): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db);
  return Number(rows[0].n);
}

/** Pi trees whose files include the artifact (their files are JSON text holding each file's sha256). */
export async function piTreesUsing(db: Kysely<Database>, sha256: string): Promise<string[]> {
  const rows = await db.selectFrom('pi_trees').select('name').where('files', 'like', `%${sha256}%`).orderBy('name').execute();
  return rows.map((r) => r.name);
}

/** Every published name and the artifact it names. */
export function allNames(db: Kysely<Database>) {
  return db.selectFrom('artifact_names').select(['name', 'sha256']).execute();
}

/** Records an artifact; false when one of that digest was already there. */
export async function insertArtifact(db: Kysely<Database>, row: ArtifactRow): Promise<boolean> {
  const inserted = await db
    .insertInto('artifacts')
    .values(row)
    .onConflict((oc) => oc.column('sha256').doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function deleteArtifact(db: Kysely<Database>, sha256: string): Promise<void> {
  await db.deleteFrom('artifacts').where('sha256', '=', sha256).execute();
}

/** Points a published name at an artifact, making the name when it is new. */
export async function saveName(db: Kysely<Database>, row: ArtifactNameRow, exists: boolean): Promise<void> {
  if (exists)
    await db.updateTable('artifact_names').set({ sha256: row.sha256, updated_at: row.updated_at }).where('name', '=', row.name).execute();
  else await db.insertInto('artifact_names').values(row).execute();
}

export async function deleteName(db: Kysely<Database>, name: string): Promise<void> {
  await db.deleteFrom('artifact_names').where('name', '=', name).execute();
}
