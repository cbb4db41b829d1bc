import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { type Db, pgTypes } from '../db/connect.ts';
import type { Database } from '../db/schema.ts';
import { type Budget, type BudgetExceeded, MinuteBudget } from './budget.ts';
import { type FailureCounter, FailureLimiter } from './limiter.ts';
import { SharedBudget, SharedFailureCounter } from './shared.ts';

/** Where the limits that guard the doors count: in this process on SQLite, in the database on PostgreSQL. */
export interface Limits {
  /** Failures per key, at most `max` in a sliding window of `windowMs`. */
  failures(scope: string, max: number, windowMs: number): FailureCounter;
  /** A server-wide allowance per minute (0: unlimited). */
  budget(scope: string, perMinute: number, onExceeded?: (exceeded: BudgetExceeded) => void): Budget;
  close(): Promise<void>;
}

const inMemory: Limits = {
  failures: (_scope, max, windowMs) => new FailureLimiter(max, windowMs),
  budget: (_scope, perMinute, onExceeded) => new MinuteBudget(perMinute, onExceeded),
  close: async () => {},
};

/**
 * The limits for a database. SQLite has one server, so its counters stay in memory. On PostgreSQL every replica
 * counts in shared tables: failures on the database's pool (checked outside transactions), budgets on a
 * connection of their own, since a budget may be asked inside a transaction that holds one of the pool's.
 */
export function limitsFor(db: Db, onError: (error: unknown) => void): Limits {
  if (db.target.dialect === 'sqlite') return inMemory;
  const pool = new pg.Pool({ connectionString: db.target.url, max: 1, types: pgTypes() });
  pool.on('error', () => {}); // an idle client's error surfaces on its next query
  const budgets = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    failures: (scope, max, windowMs) => new SharedFailureCounter(db.kysely, scope, { max, windowMs }, onError),
    budget: (scope, perMinute, onExceeded) => new SharedBudget(budgets, scope, perMinute, { onExceeded, onError }),
    close: () => budgets.destroy(),
  };
}
