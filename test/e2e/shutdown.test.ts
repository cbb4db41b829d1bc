import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { createMuster } from '../../packages/server/src/app.ts';
import { openDatabase } from '../../packages/server/src/platform/db/connect.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { testConfig } from '../support/harness.ts';

const made: TestDatabase[] = [];
after(() => Promise.all(made.map((d) => d.drop())));

for (const kind of databaseKinds) {
  test(`shutdown lets a running request finish its writes before the database closes [${kind}]`, async () => {
    const database = await createTestDatabase(kind);
    made.push(database);
    const config = testConfig(database);
    const muster = await createMuster(config);
    await muster.listen();
    await muster.users.create('test', { username: 'late', role: 'viewer', password: 'correct horse battery' });
    const port = (muster.app.server.address() as AddressInfo).port;
    // The login spends tens of milliseconds in argon2 before it writes last_login_at.
    const login = fetch(`http://127.0.0.1:${port}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'late', password: 'correct horse battery' }),
    }).catch(() => null);
    // Close once the login is inside its handler (a busy machine may take a while to deliver it).
    for (let i = 0; i < 2000 && muster.app.handlersRunning() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    await muster.close();
    await login;
    const db = openDatabase(config.database);
    const user = await db.kysely.selectFrom('users').select('last_login_at').where('username', '=', 'late').executeTakeFirstOrThrow();
    await db.close();
    assert.notEqual(user.last_login_at, null);
  });
}
