import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const statementCacheSize = 256;

function bindable(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  return value;
}

function adapt(statement: StatementSync): SqliteStatement {
  const reader = statement.columns().length > 0;
  const args = (parameters: ReadonlyArray<unknown>) => parameters.map(bindable) as never[];
  return {
    reader,
    all: (parameters) => statement.all(...args(parameters)),
    run: (parameters) => {
      const result = statement.run(...args(parameters));
      return { changes: result.changes, lastInsertRowid: result.lastInsertRowid };
    },
    iterate: (parameters) => statement.iterate(...args(parameters)) as IterableIterator<unknown>,
  };
}

/**
 * node:sqlite behind the interface Kysely's SqliteDialect expects (that of better-sqlite3).
 * Prepared statements are cached: Kysely sends the same SQL text for the same query shape.
 */
export function openNodeSqlite(path: string): SqliteDatabase & { raw: DatabaseSync } {
  const raw = new DatabaseSync(path);
  const cache = new Map<string, SqliteStatement>();
  return {
    raw,
    close: () => raw.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = adapt(raw.prepare(sql));
        if (cache.size >= statementCacheSize) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}
