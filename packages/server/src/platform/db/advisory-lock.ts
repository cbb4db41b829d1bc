import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';
import type { Tx } from './transact.ts';

/** Runs `work` holding a PostgreSQL advisory lock on (classKey, key), on one connection of the pool. */
export function withAdvisoryLock<T>(db: Kysely<Database>, classKey: number, key: number, work: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (connection) => {
    await sql`select pg_advisory_lock(${classKey}, ${key})`.execute(connection);
    try {
      return await work();
    } finally {
      await sql`select pg_advisory_unlock(${classKey}, ${key})`.execute(connection);
    }
  });
}

/** On PostgreSQL, holds an advisory lock on (classKey, key) until the transaction ends; SQLite has one writer already. */
export async function lockForTransaction(tx: Tx, classKey: number, key: number): Promise<void> {
  if (tx.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${classKey}, ${key})`.execute(tx.db);
}
