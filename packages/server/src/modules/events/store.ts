import type { Kysely } from 'kysely';
import type { Database } from '../../platform/db/schema.ts';

export interface EventFilter {
  machineId?: string;
  /** A type, or a prefix of types when it ends in a dot. */
  type?: string;
}

/** Events after an id, oldest first. */
export function eventRows(db: Kysely<Database>, filter: EventFilter, afterId: number, limit: number) {
  let q = db
    .selectFrom('events')
    .selectAll()
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(limit + 1);
  if (filter.machineId) q = q.where('machine_id', '=', filter.machineId);
  if (filter.type)
    q = filter.type.endsWith('.')
      ? q.where('type', 'like', `${filter.type.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
      : q.where('type', '=', filter.type);
  return q.execute();
}

export function findEventRow(db: Kysely<Database>, id: number) {
  return db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
}
