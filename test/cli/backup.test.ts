import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/databases.ts';
import { enrollBody } from '../support/harness.ts';
import { exited, spawnServer } from '../support/process.ts';
import { runCli, tempDir } from './cli-process.ts';

const enrollments = 300;

function countMachines(file: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return Number((db.prepare('select count(*) as n from machines').get() as { n: number }).n);
  } finally {
    db.close();
  }
}

describe('muster backup', () => {
  let database: TestDatabase;
  after(() => database?.drop());

  test('copies the SQLite database while the server enrolls machines: a whole database, mode 0600', async () => {
    database = await createTestDatabase('sqlite');
    const server = await spawnServer(database.dataDir);
    try {
      let acknowledgedBeforeBackup = 0;
      let acknowledged = 0;
      const enroll = async (n: number) => {
        const reply = await fetch(`${server.url}/api/v1/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(enrollBody(n)),
        });
        assert.ok(reply.ok, await reply.text());
        acknowledged++;
      };
      const load = (async () => {
        for (let n = 0; n < enrollments; n += 10) await Promise.all(Array.from({ length: 10 }, (_, i) => enroll(n + i)));
      })();
      while (acknowledged < 50) await new Promise((r) => setTimeout(r, 10));
      acknowledgedBeforeBackup = acknowledged;
      const file = join(tempDir('muster-backup-'), 'copy.db');
      const result = await runCli(['backup', file, '--data-dir', database.dataDir, '--json']);
      await load;
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout);
      assert.deepEqual(Object.keys(report).sort(), ['bytes', 'database', 'file']);
      assert.equal(report.file, file);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const copied = countMachines(file);
      assert.ok(copied >= acknowledgedBeforeBackup && copied <= enrollments, `${copied} machines in the copy`);
      const db = new DatabaseSync(file, { readOnly: true });
      assert.deepEqual({ ...(db.prepare('PRAGMA integrity_check').get() as object) }, { integrity_check: 'ok' });
      db.close();
      assert.deepEqual(
        readdirSync(join(file, '..')).filter((name) => name.includes('partial')),
        [],
        'no partial file is left beside the copy',
      );

      const again = await runCli(['backup', file, '--data-dir', database.dataDir]);
      assert.equal(again.code, 4);
      assert.match(again.stderr, /^muster: .*copy\.db exists; choose a new file name\n$/);
    } finally {
      server.child.kill('SIGTERM');
      await exited(server.child);
    }
  });

  test('a data directory without a database is exit 3 and writes nothing', async () => {
    const empty = tempDir('muster-backup-empty-');
    const file = join(tempDir('muster-backup-'), 'copy.db');
    const result = await runCli(['backup', file, '--data-dir', empty]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /^muster: no database at .*muster\.db\n$/);
    assert.equal(existsSync(file), false);
  });

  test('PostgreSQL is refused with the pg_dump way before connecting, and nothing is written', async () => {
    const file = join(tempDir('muster-backup-'), 'copy.db');
    const result = await runCli(['backup', file, '--database-url', 'postgres://muster@127.0.0.1:1/muster']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /pg_dump --format=custom/);
    assert.equal(existsSync(file), false);
  });
});
