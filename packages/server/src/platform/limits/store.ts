import { type Kysely, sql } from 'kysely';
import type { Database, LimitBudgetRow } from '../db/schema.ts';

/** A key's failures since a moment: how many, and when the oldest of them was (ms). */
export interface RecentFailures {
  failures: number;
  oldest: number;
}

/** The failures of each key after `since` (ms), by key; a key with none is missing. One indexed query. */
export async function recentFailures(
  db: Kysely<Database>,
  scope: string,
  keys: readonly string[],
  since: number,
): Promise<Map<string, RecentFailures>> {
  const rows = await db
    .selectFrom('limit_failures')
    .select((eb) => ['key', eb.fn.sum<number>('count').as('failures'), eb.fn.min<number>('at').as('oldest')])
    .where('scope', '=', scope)
    .where('key', 'in', [...keys])
    .where('at', '>', since)
    .groupBy('key')
    .execute();
  return new Map(rows.map((r) => [r.key, { failures: Number(r.failures), oldest: Number(r.oldest) }]));
}

/** Counts one failure against each key at `at`; the rows may be pruned from `expiresAt` on. */
export async function addFailures(db: Kysely<Database>, scope: string, keys: readonly string[], at: number, expiresAt: number) {
  await db
    .insertInto('limit_failures')
    .values([...new Set(keys)].map((key) => ({ scope, key, at, count: 1, expires_at: expiresAt })))
    .onConflict((oc) => oc.columns(['scope', 'key', 'at']).doUpdateSet((eb) => ({ count: eb('limit_failures.count', '+', 1) })))
    .execute();
}

export async function forgetFailures(db: Kysely<Database>, scope: string, key: string): Promise<void> {
  await db.deleteFrom('limit_failures').where('scope', '=', scope).where('key', '=', key).execute();
}

/** Deletes every failure row that has expired by `now`; returns how many. */
export async function pruneFailures(db: Kysely<Database>, now: number): Promise<number> {
  const result = await db.deleteFrom('limit_failures').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Asks for `ask` more of a budget's current window, starting a new window of `windowMs` at `now` when the last
 * one has ended. Returns the window with all that replicas have asked for in it, this ask included; the row is
 * locked only for this one statement.
 */
export async function reserveAllowance(
  db: Kysely<Database>,
  scope: string,
  ask: number,
  windowMs: number,
  now: number,
): Promise<Pick<LimitBudgetRow, 'window_start' | 'window_end' | 'reserved'>> {
  const ended = sql<boolean>`limit_budgets.window_end <= ${now}`;
  const row = await db
    .insertInto('limit_budgets')
    .values({ scope, window_start: now, window_end: now + windowMs, reserved: ask, reported: 0 })
    .onConflict((oc) =>
      oc.column('scope').doUpdateSet({
        window_start: sql`case when ${ended} then ${now} else limit_budgets.window_start end`,
        window_end: sql`case when ${ended} then ${now + windowMs} else limit_budgets.window_end end`,
        reserved: sql`case when ${ended} then ${ask} else limit_budgets.reserved + ${ask} end`,
        reported: sql`case when ${ended} then 0 else limit_budgets.reported end`,
      }),
    )
    .returning(['window_start', 'window_end', 'reserved'])
    .executeTakeFirstOrThrow();
  return { window_start: Number(row.window_start), window_end: Number(row.window_end), reserved: Number(row.reserved) };
}

/** True for the one caller that first reports the window starting at `windowStart` spent. */
export async function claimSpentReport(db: Kysely<Database>, scope: string, windowStart: number): Promise<boolean> {
  const result = await db
    .updateTable('limit_budgets')
    .set({ reported: 1 })
    .where('scope', '=', scope)
    .where('window_start', '=', windowStart)
    .where('reported', '=', 0)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
