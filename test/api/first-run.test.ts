import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MusterError } from '@muster/contract';
import { createMuster } from '../../packages/server/src/app.ts';
import { loadConfig } from '../../packages/server/src/config/load.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { testConfig } from '../support/harness.ts';

const made: TestDatabase[] = [];
after(() => Promise.all(made.map((d) => d.drop())));

async function freshDatabase(kind: (typeof databaseKinds)[number]): Promise<TestDatabase> {
  const database = await createTestDatabase(kind);
  made.push(database);
  return database;
}

for (const kind of databaseKinds) {
  test(`the one-time setup code makes the first admin once, and only that code works [${kind}]`, async () => {
    const muster = await createMuster(testConfig(await freshDatabase(kind)));
    try {
      const code = await muster.auth.issueSetupCode();
      assert.ok(code && code.length >= 12);
      const body = (c: string) => ({ code: c, username: 'first', password: 'a long passphrase' });
      const wrong = await muster.app.inject({ method: 'POST', url: '/api/v1/setup', payload: body('not-the-code') });
      assert.deepEqual([wrong.statusCode, wrong.json().code], [403, 'forbidden']);
      const made = await muster.app.inject({ method: 'POST', url: '/api/v1/setup', payload: body(code) });
      assert.equal(made.statusCode, 201);
      assert.deepEqual({ username: made.json().username, role: made.json().role }, { username: 'first', role: 'admin' });
      const again = await muster.app.inject({ method: 'POST', url: '/api/v1/setup', payload: { ...body(code), username: 'second' } });
      assert.deepEqual([again.statusCode, again.json().code], [403, 'forbidden']);
      assert.equal(await muster.auth.issueSetupCode(), null, 'no new code once a user exists');
      const login = await muster.app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'first', password: 'a long passphrase' },
      });
      assert.equal(login.statusCode, 200);
    } finally {
      await muster.close();
    }
  });
}

test('ENABLE_AUTH=false is refused unless the server listens on loopback only', async () => {
  const database = await freshDatabase('sqlite');
  for (const listen of ['0.0.0.0:0', ':0', '10.1.2.3:0']) {
    const config = loadConfig(
      { listen, dataDir: database.dataDir },
      { ENABLE_AUTH: 'false', MUSTER_LOG_LEVEL: 'silent', MUSTER_TFTP_LISTEN: 'off' },
    );
    await assert.rejects(
      createMuster(config),
      (e: unknown) => e instanceof MusterError && e.code === 'bad_request' && /ENABLE_AUTH=false is refused/.test(e.message),
      listen,
    );
  }
});

test('with ENABLE_AUTH=false on loopback every caller acts as a local admin, and that is recorded', async () => {
  const database = await freshDatabase('sqlite');
  const config = loadConfig(
    { listen: '127.0.0.1:0', dataDir: database.dataDir },
    { ENABLE_AUTH: 'false', MUSTER_LOG_LEVEL: 'silent', MUSTER_TFTP_LISTEN: 'off' },
  );
  const muster = await createMuster(config);
  try {
    const created = await muster.app.inject({ method: 'POST', url: '/api/v1/fleets', payload: { name: 'lab' } });
    assert.equal(created.statusCode, 201);
    const events = await muster.app.inject({ method: 'GET', url: '/api/v1/events?type=fleet.created' });
    assert.deepEqual(
      events.json().items.map((e: { actor: string }) => e.actor),
      ['local'],
    );
  } finally {
    await muster.close();
  }
});
