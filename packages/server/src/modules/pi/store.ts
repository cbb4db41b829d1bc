import type { Kysely } from 'kysely';
import { decodeCursor } from '../../platform/db/page.ts';
import type { Database, PiTreeRow } from '../../platform/db/schema.ts';

export function listTreeRows(db: Kysely<Database>): Promise<PiTreeRow[]> {
  return db.selectFrom('pi_trees').selectAll().orderBy('name').execute();
}

export function findTreeRow(db: Kysely<Database>, name: string): Promise<PiTreeRow | undefined> {
  return db.selectFrom('pi_trees').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Inserts a tree, or replaces the files of the one of that name (keeping its creation time). */
export async function saveTreeRow(db: Kysely<Database>, row: PiTreeRow, exists: boolean): Promise<void> {
  if (exists) await db.updateTable('pi_trees').set({ files: row.files, updated_at: row.updated_at }).where('name', '=', row.name).execute();
  else await db.insertInto('pi_trees').values(row).execute();
}

/** Deletes a tree; false when there was none. */
export async function deleteTreeRow(db: Kysely<Database>, name: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom('pi_trees').where('name', '=', name).executeTakeFirst();
  return Number(numDeletedRows) > 0;
}

/** The serial patterns of the trees' own rules (a tree's rule has the tree's name). */
export function ownRules(db: Kysely<Database>, names: string[]) {
  return db.selectFrom('rules').select(['name', 'serial_pattern']).where('name', 'in', names).where('pi_tree', 'in', names).execute();
}

export async function deleteOwnRule(db: Kysely<Database>, tree: string): Promise<void> {
  await db.deleteFrom('rules').where('name', '=', tree).where('pi_tree', '=', tree).execute();
}

/** Rules other than its own that send serials to a tree. */
export function otherRulesNaming(db: Kysely<Database>, tree: string) {
  return db.selectFrom('rules').select('name').where('pi_tree', '=', tree).where('name', '<>', tree).execute();
}

/** How many machines each tree serves. */
export function machineCounts(db: Kysely<Database>, names: string[]) {
  return db
    .selectFrom('machines')
    .select(['pi_tree', (eb) => eb.fn.countAll<number>().as('count')])
    .where('pi_tree', 'in', names)
    .groupBy('pi_tree')
    .execute();
}

export async function treeInUse(db: Kysely<Database>, tree: string): Promise<boolean> {
  return (await db.selectFrom('machines').select('id').where('pi_tree', '=', tree).limit(1).execute()).length > 0;
}

/** How many of these artifacts exist. */
export async function countArtifacts(db: Kysely<Database>, shas: string[]): Promise<number> {
  return (await db.selectFrom('artifacts').select('sha256').where('sha256', 'in', shas).execute()).length;
}

/** Machines with a tree joined to their serials, in serial order, from after a cursor. */
function pisQuery(db: Kysely<Database>, tree: string | undefined) {
  let q = db
    .selectFrom('machines')
    .innerJoin('identifiers', (j) => j.onRef('identifiers.machine_id', '=', 'machines.id').on('identifiers.kind', '=', 'serial'))
    .where('machines.pi_tree', 'is not', null);
  if (tree) q = q.where('machines.pi_tree', '=', tree);
  return q;
}

export function listPiRows(db: Kysely<Database>, options: { tree?: string; cursor?: string; limit: number }) {
  let query = pisQuery(db, options.tree)
    .selectAll('machines')
    .select('identifiers.value as serial')
    .orderBy('identifiers.value')
    .limit(options.limit + 1);
  if (options.cursor) query = query.where('identifiers.value', '>', String(decodeCursor(options.cursor, 1)[0]));
  return query.execute();
}

export async function countPis(db: Kysely<Database>, tree: string | undefined): Promise<number> {
  const counted = await pisQuery(db, tree)
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(counted.count);
}
