import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

type Counted = { table: 'machines'; column: 'fleet_id' } | { table: 'group_members'; column: 'group_id' };

/** How many rows of `table` point at each of `ids` through `column` (machines of fleets, members of groups). */
export async function countRowsBy(db: Kysely<Database>, { table, column }: Counted, ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql<{ id: string; n: number }>`
    select ${sql.ref(column)} as id, count(*) as n from ${sql.table(table)}
    where ${sql.ref(column)} in (${sql.join(ids)}) group by ${sql.ref(column)}`.execute(db);
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}
