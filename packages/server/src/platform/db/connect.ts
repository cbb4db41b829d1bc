import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { privateDirectory, privateFiles } from '../files/private.ts';
import { openNodeSqlite } from './node-sqlite.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export type DatabaseTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  target: DatabaseTarget;
  /** A pg pool for LISTEN and for tools; null on SQLite. */
  pool: pg.Pool | null;
  close(): Promise<void>;
}

const int8 = 20;
const numeric = 1700;

export function pgTypes() {
  return {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === int8 || oid === numeric ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format),
  };
}

export interface OpenOptions {
  /** PostgreSQL connections (default 10). */
  poolSize?: number;
  /** SQLite: normal survives a crash of the process, full a loss of power too (default normal). */
  sync?: 'normal' | 'full';
}

export function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): Db {
  if (target.dialect === 'sqlite') {
    privateDirectory(dirname(target.path));
    const sqlite = openNodeSqlite(target.path);
    // SQLite gives the -wal and -shm files the database file's mode, so the database is made 0600 first.
    privateFiles(target.path, `${target.path}-wal`, `${target.path}-shm`);
    // WAL keeps readers off the writer; NORMAL sync is durable against a process crash (kill -9),
    // and MUSTER_SQLITE_SYNC=full extends that to power loss (docs/storage.md).
    const sync = options.sync === 'full' ? 'FULL' : 'NORMAL';
    sqlite.raw.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${sync}; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;`);
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { kysely, dialect: 'sqlite', target, pool: null, close: () => kysely.destroy() };
  }
  const pool = new pg.Pool({
    connectionString: target.url,
    max: options.poolSize ?? 10,
    types: pgTypes(),
  });
  pool.on('error', () => {}); // an idle client's error surfaces on its next query
  pool.on('connect', prepareRepeatedStatements);
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { kysely, dialect: 'postgres', target, pool, close: () => kysely.destroy() };
}

const preparedPerConnection = 256;

/**
 * Kysely sends every statement unnamed, so PostgreSQL parses and plans it each time. Naming statements by
 * their text makes each connection prepare a statement once and reuse it (and its plan) afterwards.
 * Only the first 256 distinct statements of a connection are kept prepared; the rest run as before.
 */
function prepareRepeatedStatements(client: pg.PoolClient): void {
  const names = new Map<string, string>();
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((text: unknown, values?: unknown, callback?: unknown) => {
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0) return query(text, values, callback);
    let name = names.get(text);
    if (!name && names.size < preparedPerConnection) {
      name = `muster_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      names.set(text, name);
    }
    return name ? query({ name, text, values }, callback) : query(text, values, callback);
  }) as typeof client.query;
}

/** Describes a target without its password, for logs and messages. */
export function describeTarget(target: DatabaseTarget): string {
  if (target.dialect === 'sqlite') return `sqlite:${target.path}`;
  try {
    const url = new URL(target.url);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres (unparsable url)';
  }
}

/** A round trip to the database: it answers, or this throws. */
export async function ping(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
