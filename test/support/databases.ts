import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export type DatabaseKind = 'sqlite' | 'postgres';

const ciDefault = 'postgres://postgres@127.0.0.1:5432/test';

/** The PostgreSQL server the suite uses: MUSTER_TEST_PG, or in CI the local one (which must then be up). */
export const pgUrl: string | null = process.env.MUSTER_TEST_PG || (process.env.CI === 'true' ? ciDefault : null);

export const databaseKinds: DatabaseKind[] = pgUrl ? ['sqlite', 'postgres'] : ['sqlite'];

if (!pgUrl) {
  process.stderr.write('# PostgreSQL suites not run: set MUSTER_TEST_PG=postgres://… to run them (CI always does)\n');
}

export interface TestDatabase {
  kind: DatabaseKind;
  dataDir: string;
  /** Passed as DATABASE_URL; undefined means SQLite in dataDir. */
  databaseUrl: string | undefined;
  drop(): Promise<void>;
}

/** A fresh, empty database: a SQLite file in a new directory, or a new PostgreSQL schema. */
export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), 'muster-test-'));
  if (kind === 'sqlite') {
    return { kind, dataDir, databaseUrl: undefined, drop: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const schema = `muster_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl as string });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL at ${pgUrl} is unreachable (${(error as Error).message}); CI requires it`);
  }
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(pgUrl as string);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    kind,
    dataDir,
    databaseUrl: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: pgUrl as string });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
