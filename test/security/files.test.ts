import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createMuster } from '../../packages/server/src/app.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { testConfig } from '../support/harness.ts';

// Both tests use one database with two data directories, as two replicas would: they share the master key.
const masterKey = { MUSTER_MASTER_KEY: randomBytes(32).toString('base64') };
const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

for (const kind of databaseKinds) {
  describe(`files at rest are private, whatever the umask [${kind}]`, () => {
    let database: TestDatabase;
    let umask: number;
    before(async () => {
      umask = process.umask(0o022);
      database = await createTestDatabase(kind);
    });
    after(async () => {
      process.umask(umask);
      await database?.drop();
    });

    test('a new data directory is 0700; the database, its WAL and artifact directories are owner-only', async () => {
      const config = testConfig({ ...database, dataDir: join(database.dataDir, 'fresh') }, masterKey);
      const muster = await createMuster(config);
      try {
        await muster.artifacts.addStream('test', Readable.from([Buffer.from('kernel')]), { name: 'bzImage' });
        const modes: Record<string, string> = { dataDir: modeOf(config.dataDir), artifacts: modeOf(config.artifactDir) };
        if (config.database.dialect === 'sqlite') {
          for (const suffix of ['', '-wal', '-shm']) modes[`muster.db${suffix}`] = modeOf(`${config.database.path}${suffix}`);
        }
        const expected: Record<string, string> = { dataDir: '0700', artifacts: '0700' };
        if (kind === 'sqlite') Object.assign(expected, { 'muster.db': '0600', 'muster.db-wal': '0600', 'muster.db-shm': '0600' });
        assert.deepEqual(modes, expected);
      } finally {
        await muster.close();
      }
    });

    test('an existing world-readable data directory and database are made private at start', async () => {
      const dataDir = join(database.dataDir, 'loose');
      mkdirSync(dataDir, { mode: 0o755 });
      chmodSync(dataDir, 0o755);
      const config = testConfig({ ...database, dataDir }, masterKey);
      if (config.database.dialect === 'sqlite') {
        // A database left world-readable by an older muster: made by a first start, then loosened.
        await (await createMuster(config)).close();
        for (const suffix of ['', '-wal', '-shm'])
          if (existsSync(`${config.database.path}${suffix}`)) chmodSync(`${config.database.path}${suffix}`, 0o644);
        chmodSync(dataDir, 0o755);
      } else {
        writeFileSync(join(dataDir, 'marker'), '');
      }
      const muster = await createMuster(config);
      await muster.close();
      assert.equal(modeOf(dataDir), '0700');
      if (config.database.dialect === 'sqlite') assert.equal(modeOf(config.database.path), '0600');
    });
  });
}
