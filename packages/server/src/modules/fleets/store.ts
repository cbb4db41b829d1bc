import type { Kysely } from 'kysely';
import type { Database } from '../../platform/db/schema.ts';

export function findFleet(db: Kysely<Database>, idOrName: string) {
  return db
    .selectFrom('fleets')
    .selectAll()
    .where(idOrName.startsWith('f_') ? 'id' : 'name', '=', idOrName)
    .executeTakeFirst();
}
