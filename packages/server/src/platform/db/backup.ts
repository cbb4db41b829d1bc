import { chmodSync, existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { MusterError } from '@muster/contract';
import type { DatabaseTarget } from './connect.ts';

export interface BackupResult {
  database: string;
  file: string;
  bytes: number;
}

/**
 * A consistent copy of a SQLite database, taken while a server may be writing to it: VACUUM INTO reads one
 * snapshot under WAL, so the copy is a complete database as of one commit. It is written beside the target
 * and renamed into place, so a failed backup leaves no half-written file.
 */
export function backupSqlite(target: DatabaseTarget, file: string): BackupResult {
  if (target.dialect !== 'sqlite') {
    throw new MusterError(
      'bad_request',
      'muster backup copies SQLite databases; back up PostgreSQL with pg_dump (docs/deploy.md), e.g. pg_dump --format=custom --file muster.dump "$DATABASE_URL"',
    );
  }
  if (!existsSync(target.path)) throw new MusterError('not_found', `no database at ${target.path}`);
  const destination = resolve(file);
  if (existsSync(destination)) throw new MusterError('conflict', `${destination} exists; choose a new file name`);
  const partial = join(dirname(destination), `.${basename(destination)}.partial-${process.pid}`);
  const source = new DatabaseSync(target.path, { readOnly: true });
  try {
    source.exec('PRAGMA busy_timeout = 10000');
    source.prepare('VACUUM INTO ?').run(partial);
    chmodSync(partial, 0o600); // it holds password hashes and keys, like the database itself
    renameSync(partial, destination);
  } catch (error) {
    rmSync(partial, { force: true });
    throw new MusterError('bad_request', `cannot back up ${target.path} to ${destination}: ${(error as Error).message}`);
  } finally {
    source.close();
  }
  const check = new DatabaseSync(destination, { readOnly: true });
  try {
    const verdict = check.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
    if (verdict.integrity_check !== 'ok') throw new MusterError('internal', `the backup at ${destination} fails its integrity check`);
    const pages = check.prepare('PRAGMA page_count').get() as { page_count: number };
    const size = check.prepare('PRAGMA page_size').get() as { page_size: number };
    return { database: target.path, file: destination, bytes: pages.page_count * size.page_size };
  } finally {
    check.close();
  }
}
