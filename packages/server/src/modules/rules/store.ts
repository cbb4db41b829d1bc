import type { Rule } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { Database, RuleRow } from '../../platform/db/schema.ts';

export function ruleFromRow(row: RuleRow): Rule {
  return {
    ...row,
    door: row.door as Rule['door'],
    action: row.action as Rule['action'],
    approval: row.approval as Rule['approval'],
    labels: JSON.parse(row.labels),
    facts: JSON.parse(row.facts),
    match_labels: JSON.parse(row.match_labels),
  };
}

export async function loadRules(db: Kysely<Database>): Promise<Rule[]> {
  return (await db.selectFrom('rules').selectAll().execute()).map(ruleFromRow);
}

export function findRuleRow(db: Kysely<Database>, name: string) {
  return db.selectFrom('rules').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Inserts or replaces a rule, keeping its creation time. */
export async function upsertRule(db: Kysely<Database>, row: RuleRow): Promise<void> {
  const { name, created_at, ...rest } = row;
  await db
    .insertInto('rules')
    .values(row)
    .onConflict((c) => c.column('name').doUpdateSet(rest))
    .execute();
}

/** Deletes a rule; false when there was none. */
export async function deleteRule(db: Kysely<Database>, name: string): Promise<boolean> {
  const { numDeletedRows } = await db.deleteFrom('rules').where('name', '=', name).executeTakeFirst();
  return Number(numDeletedRows) > 0;
}

/** Whether a Pi tree of that name exists: a rule may name only one that does. */
export async function piTreeExists(db: Kysely<Database>, name: string): Promise<boolean> {
  return (await db.selectFrom('pi_trees').select('name').where('name', '=', name).executeTakeFirst()) !== undefined;
}

export function fleetExists(db: Kysely<Database>, name: string) {
  return db.selectFrom('fleets').select('id').where('name', '=', name).executeTakeFirst();
}

export function profileExists(db: Kysely<Database>, name: string) {
  return db.selectFrom('profiles').select('name').where('name', '=', name).executeTakeFirst();
}
