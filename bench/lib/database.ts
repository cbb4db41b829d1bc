import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { type DbKind, oneLine } from './figures.ts';
import { onCleanup, tempDir } from './run.ts';

export const defaultPgUrl = 'postgres://postgres@127.0.0.1:5432/test';

export async function pgReachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return oneLine(error);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface PgSchema {
  schema: string;
  /** The base URL with `options=-c search_path=<schema>`. */
  url: string;
  drop(): Promise<void>;
}

export function withSearchPath(baseUrl: string, schema: string): string {
  return `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

export async function createPgSchema(baseUrl: string, label: string): Promise<PgSchema> {
  const schema = `bench_${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`create schema ${schema}`);
  } finally {
    await client.end();
  }
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    unregister();
    const c = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      await c.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await c.end();
    }
  };
  const unregister = onCleanup(drop);
  return { schema, url: withSearchPath(baseUrl, schema), drop };
}

/** A database for one run: a fresh data dir, and on PostgreSQL a fresh schema. */
export interface BenchDb {
  kind: DbKind;
  dataDir: string;
  /** DATABASE_URL for PostgreSQL; undefined on SQLite. */
  url?: string;
  schema?: string;
  sqlitePath: string;
  dispose(): Promise<void>;
}

export async function createBenchDb(kind: DbKind, label: string, pgUrl: string): Promise<BenchDb> {
  const dataDir = tempDir(`${label}-${kind}`);
  const sqlitePath = join(dataDir, 'muster.db');
  if (kind === 'sqlite') {
    return { kind, dataDir, sqlitePath, dispose: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const schema = await createPgSchema(pgUrl, label);
  return {
    kind,
    dataDir,
    sqlitePath,
    url: schema.url,
    schema: schema.schema,
    dispose: async () => {
      await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
