import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import type { Config } from '../../packages/server/src/config/load.ts';
import { Keyring, keyId } from '../../packages/server/src/platform/crypto/keyring.ts';
import { openDatabase } from '../../packages/server/src/platform/db/connect.ts';
import { readSetting, writeSetting } from '../../packages/server/src/platform/db/settings.ts';
import { runCli } from '../cli/cli-process.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { testConfig } from '../support/harness.ts';

// Secrets at rest (issue: identity, part 4; docs/secrets.md): the session signing key and the boot URL key are
// sealed with the master key in the database, the key file is the owner's alone, a server with the wrong key
// stops at start naming the key it needs, and a rotation re-seals everything without ending a session.

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
const newKey = () => randomBytes(32).toString('base64');

async function withSettings<T>(config: Config, run: (db: ReturnType<typeof openDatabase>) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database, { poolSize: 1, sync: 'normal' });
  try {
    return await run(db);
  } finally {
    await db.close();
  }
}

async function login(muster: Muster): Promise<string> {
  await muster.users.create('test', { username: 'keeper', password: 'a long enough password', role: 'admin' }).catch(() => {});
  const response = await muster.app.inject({
    method: 'POST',
    url: '/api/v1/login',
    payload: { username: 'keeper', password: 'a long enough password' },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json().token;
}

async function me(muster: Muster, token: string): Promise<number> {
  return (await muster.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode;
}

for (const kind of databaseKinds) {
  describe(`secrets at rest are sealed with the master key [${kind}]`, () => {
    let database: TestDatabase;
    let config: Config;
    const dbFlags = () => ['--data-dir', database.dataDir, ...(database.databaseUrl ? ['--database-url', database.databaseUrl] : [])];

    before(async () => {
      database = await createTestDatabase(kind);
      config = testConfig(database);
    });
    after(async () => {
      await database?.drop();
    });

    test('the first start makes a key file only its owner reads, and stores the secrets sealed, never in the clear', async () => {
      const muster = await createMuster(config);
      await muster.close();
      assert.equal(modeOf(config.masterKeyFile), '0600');
      const keyring = Keyring.parse(readFileSync(config.masterKeyFile, 'utf8'), 'file');
      const stored = await withSettings(config, async (db) => ({
        jwt: await readSetting(db.kysely, 'jwt_secret'),
        boot: await readSetting(db.kysely, 'boot_url_key'),
      }));
      for (const [name, value] of [
        ['jwt_secret', stored.jwt],
        ['boot_url_key', stored.boot],
      ] as const) {
        assert.match(String(value), new RegExp(`^sealed:v1:${keyring.currentId}:`));
        const plain = keyring.open(String(value), name);
        assert.ok(plain.length >= 48);
        if (config.database.dialect === 'sqlite') {
          for (const file of [config.database.path, `${config.database.path}-wal`]) {
            let bytes: Buffer;
            try {
              bytes = readFileSync(file);
            } catch {
              continue;
            }
            assert.equal(bytes.includes(plain), false, `${name} in the clear in ${file}`);
          }
        }
      }
    });

    test('sessions outlive a restart: the same sealed secret opens again', async () => {
      let muster = await createMuster(config);
      const token = await login(muster);
      await muster.close();
      muster = await createMuster(config);
      try {
        assert.equal(await me(muster, token), 200);
      } finally {
        await muster.close();
      }
    });

    test('a server given another master key stops at start and names the key the secrets need, quoting no key', async () => {
      const wrong = newKey();
      const current = Keyring.parse(readFileSync(config.masterKeyFile, 'utf8'), 'file').currentId;
      await assert.rejects(createMuster(testConfig(database, { MUSTER_MASTER_KEY: wrong })), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'bad_request');
        assert.match(error.message, new RegExp(`sealed with master key ${current}, which this server does not have`));
        assert.ok(!error.message.includes(wrong));
        return true;
      });
      const result = await runCli(['serve', ...dbFlags(), '--listen', '127.0.0.1:0'], { env: { MUSTER_MASTER_KEY: wrong } });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /does not have/);
      assert.ok(!result.stderr.includes(wrong) && !result.stdout.includes(wrong));
    });

    test('a malformed MUSTER_MASTER_KEY is a one-line error at start, exit 2; --print-config masks a good one', async () => {
      const bad = await runCli(['serve', ...dbFlags(), '--listen', '127.0.0.1:0'], { env: { MUSTER_MASTER_KEY: 'not-a-key' } });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /MUSTER_MASTER_KEY: key 1 is not 32 bytes/);
      const key = newKey();
      const printed = await runCli(['serve', '--print-config', ...dbFlags()], { env: { MUSTER_MASTER_KEY: key } });
      assert.equal(printed.code, 0, printed.stderr);
      assert.equal(JSON.parse(printed.stdout).masterKey, '[set]');
      assert.ok(!printed.stdout.includes(key));
    });

    test('a secret an earlier version stored in the clear is sealed at the next start, and keeps its value', async () => {
      await withSettings(config, (db) => writeSetting(db.kysely, 'jwt_secret', 'secret stored in the clear by an earlier version'));
      const muster = await createMuster(config);
      await muster.close();
      const stored = String(await withSettings(config, (db) => readSetting(db.kysely, 'jwt_secret')));
      const keyring = Keyring.parse(readFileSync(config.masterKeyFile, 'utf8'), 'file');
      assert.equal(keyring.open(stored, 'jwt_secret'), 'secret stored in the clear by an earlier version');
    });

    test('master-key rotate (key file) re-seals every secret under a new key, keeps sessions, and records an event', async () => {
      let muster = await createMuster(config);
      const token = await login(muster);
      await muster.close();
      const before = Keyring.parse(readFileSync(config.masterKeyFile, 'utf8'), 'file');

      const rotated = await runCli(['--json', 'master-key', 'rotate', ...dbFlags()]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const report = JSON.parse(rotated.stdout);
      const after = Keyring.parse(readFileSync(config.masterKeyFile, 'utf8'), 'file');
      assert.equal(after.ids.length, 1, 'the file keeps the new key only');
      assert.notEqual(after.currentId, before.currentId);
      assert.equal(report.to, after.currentId);
      assert.deepEqual(report.resealed.map((r: { name: string }) => r.name).sort(), ['boot_url_key', 'ca_key', 'jwt_secret']);
      assert.equal(modeOf(config.masterKeyFile), '0600');
      assert.ok(!rotated.stdout.includes(after.serialize().trim()), 'no key is printed');

      const shown = await runCli(['--json', 'master-key', 'show', ...dbFlags()]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(JSON.parse(shown.stdout).secrets, [
        { name: 'boot_url_key', key: after.currentId },
        { name: 'ca_key', key: after.currentId },
        { name: 'jwt_secret', key: after.currentId },
      ]);

      // The old key alone no longer opens anything.
      await assert.rejects(createMuster(testConfig(database, { MUSTER_MASTER_KEY: before.serialize().trim() })), /does not have/);
      muster = await createMuster(config);
      try {
        assert.equal(await me(muster, token), 200);
        const events = await muster.app.inject({
          method: 'GET',
          url: '/api/v1/events?type=master_key.rotated',
          headers: { authorization: `Bearer ${token}` },
        });
        const [event] = events.json().items;
        assert.deepEqual(event.data, {
          from: [before.currentId],
          to: after.currentId,
          secrets: ['boot_url_key', 'ca_key', 'jwt_secret'],
          machine_secrets: 0,
        });
        assert.equal(event.actor, 'cli');
      } finally {
        await muster.close();
      }
    });

    test('master-key rotate with MUSTER_MASTER_KEY: one key is refused with how to do it; NEW,OLD re-seals under NEW', async () => {
      const file = readFileSync(config.masterKeyFile, 'utf8').trim();
      const one = await runCli(['master-key', 'rotate', ...dbFlags()], { env: { MUSTER_MASTER_KEY: file } });
      assert.equal(one.code, 2);
      assert.match(one.stderr, /put the new key first \(MUSTER_MASTER_KEY=NEW,OLD/);

      const next = newKey();
      const rotated = await runCli(['master-key', 'rotate', ...dbFlags()], { env: { MUSTER_MASTER_KEY: `${next},${file}` } });
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(
        rotated.stdout,
        new RegExp(
          `Sealed 3 secret\\(s\\) with master key ${keyId(Buffer.from(next, 'base64'))} \\(was ${Keyring.parse(file, 'f').currentId}\\)`,
        ),
      );
      assert.equal(readFileSync(config.masterKeyFile, 'utf8').trim(), file, 'the key file is left alone');
      const muster = await createMuster(testConfig(database, { MUSTER_MASTER_KEY: next }));
      await muster.close();
      await assert.rejects(createMuster(config), /does not have/);
    });
  });
}

test('the key file path is DATA_DIR/master.key unless MUSTER_MASTER_KEY_FILE names another', () => {
  const config = testConfig({ kind: 'sqlite', dataDir: '/tmp/muster-key-test', databaseUrl: undefined, drop: async () => {} });
  assert.equal(config.masterKeyFile, join('/tmp/muster-key-test', 'master.key'));
  const other = testConfig(
    { kind: 'sqlite', dataDir: '/tmp/x', databaseUrl: undefined, drop: async () => {} },
    { MUSTER_MASTER_KEY_FILE: '/etc/muster/key' },
  );
  assert.equal(other.masterKeyFile, '/etc/muster/key');
});
