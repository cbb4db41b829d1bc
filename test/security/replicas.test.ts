// Issue 17, finding 6: the limits that guard logins, claims and new machines must hold across replicas. Two
// servers on one PostgreSQL database are attacked in turn; together they must allow what one server allows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import { newMasterKey } from '../../packages/server/src/platform/crypto/keyring.ts';
import { createTestDatabase, pgUrl, type TestDatabase } from '../support/databases.ts';
import { enrollBody, testConfig } from '../support/harness.ts';

const password = 'correct horse battery';
// One server alone: 4 failed logins and 4 wrong claims a minute per address, 6 new machines a minute in all.
const limits = { MUSTER_LOGIN_RATE: '4', MUSTER_CLAIM_FAILURE_RATE: '4', MUSTER_DISCOVERY_RATE: '6' };

/** A request to one replica as it arrives from `remoteAddress`. */
async function ask(replica: Muster, url: string, body: unknown, remoteAddress: string, token?: string) {
  const response = await replica.app.inject({
    method: 'POST',
    url,
    remoteAddress,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    payload: JSON.stringify(body),
  });
  return { status: response.statusCode, body: response.json() };
}

// Replicas share PostgreSQL only (SQLite has one server), so this suite runs where PostgreSQL does: always in CI.
const onPostgres = pgUrl ? describe : () => {};
onPostgres('security: two replicas on one PostgreSQL allow what one server allows', () => {
  let database: TestDatabase;
  let replicas: Muster[] = [];
  let token: string;
  /** The replica the n-th request goes to: one, two, one, two, … */
  const replica = (n: number) => replicas[n % 2];

  before(async () => {
    database = await createTestDatabase('postgres');
    const env = { ...limits, MUSTER_MASTER_KEY: newMasterKey() };
    // One after the other: the first makes the CA and the shared secrets, the second finds them.
    replicas.push(await createMuster(testConfig(database, env)));
    replicas.push(await createMuster(testConfig(database, env)));
    await replicas[0].users.create('test', { username: 'admin', role: 'admin', password });
    token = (await replicas[0].auth.login('admin', password)).token;
  });

  after(async () => {
    for (const muster of replicas) await muster.close();
    replicas = [];
    await database?.drop();
  });

  test('wrong logins alternating over both replicas are refused after the one-server limit of 4, not 8', async () => {
    await replicas[0].users.create('test', { username: 'victim', role: 'viewer', password });
    const attacker = '198.51.100.7';
    const statuses: number[] = [];
    for (let n = 0; n < 8; n++) {
      statuses.push((await ask(replica(n), '/api/v1/login', { username: 'victim', password: `guess-${n}` }, attacker)).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429, 429, 429]);
    const right = { username: 'victim', password };
    assert.deepEqual(
      [
        (await ask(replicas[0], '/api/v1/login', right, attacker)).status,
        (await ask(replicas[1], '/api/v1/login', right, attacker)).status,
      ],
      [429, 429],
      'the attacking address waits on both replicas, even with the right password',
    );
    assert.equal((await ask(replicas[1], '/api/v1/login', right, '203.0.113.20')).status, 200, 'the victim still gets in from elsewhere');
  });

  test('wrong one-time passwords alternating over both replicas are refused after the one-server limit of 4', async () => {
    assert.equal((await ask(replicas[0], '/api/v1/fleets', { name: 'north' }, '127.0.0.1', token)).status, 201);
    const [slot] = (await ask(replicas[0], '/api/v1/fleets/north/slots', { count: 1 }, '127.0.0.1', token)).body.slots;
    const attacker = '198.51.100.8';
    const statuses: number[] = [];
    for (let n = 0; n < 8; n++) {
      statuses.push((await ask(replica(n), '/api/v1/claims/otp', { fleet: 'north', otp: `guess-${n}`, hwid: 'HW-OTP' }, attacker)).status);
    }
    assert.deepEqual(statuses, [403, 403, 403, 403, 429, 429, 429, 429]);
    const real = { fleet: 'north', otp: slot.otp, hwid: 'HW-OTP' };
    assert.equal((await ask(replicas[1], '/api/v1/claims/otp', real, attacker)).status, 429, 'the real password too, from that address');
    assert.equal((await ask(replicas[1], '/api/v1/claims/otp', real, '203.0.113.21')).status, 201, 'another address still claims');
  });

  test('wrong enrollment tokens alternating over both replicas are refused after the one-server limit of 4', async () => {
    const created = await ask(replicas[0], '/api/v1/enrollment-tokens', { name: 'image', approval: 'auto' }, '127.0.0.1', token);
    assert.equal(created.status, 201);
    const attacker = '198.51.100.9';
    const statuses: number[] = [];
    for (let n = 0; n < 8; n++) {
      statuses.push((await ask(replica(n), '/api/v1/claims/token', { token: `mse_guess${n}`, hwid: 'HW-TOK' }, attacker)).status);
    }
    assert.deepEqual(statuses, [403, 403, 403, 403, 429, 429, 429, 429]);
    const real = { token: created.body.token, hwid: 'HW-TOK' };
    assert.equal((await ask(replicas[0], '/api/v1/claims/token', real, attacker)).status, 429, 'the real token too, from that address');
    assert.equal((await ask(replicas[0], '/api/v1/claims/token', real, '203.0.113.22')).status, 201, 'another address still claims');
  });

  test('new machines enrolled alternately through both replicas stop at the one-server discovery budget of 6', async () => {
    const before = (await ask(replicas[0], '/api/v1/enroll', enrollBody(9000), '192.0.2.1')).status;
    assert.equal(before, 201, 'the budget is not spent before');
    const statuses: number[] = [];
    for (let n = 1; n < 14; n++) statuses.push((await ask(replica(n), '/api/v1/enroll', enrollBody(9000 + n), `192.0.2.${n + 1}`)).status);
    // The token claim of the test before made a machine too: with the one above, 2 of the 6 are spent.
    assert.deepEqual(statuses, [201, 201, 201, 201, 429, 429, 429, 429, 429, 429, 429, 429, 429]);
    // A machine already known is answered as usual past the budget, on either replica.
    assert.deepEqual(
      [
        (await ask(replicas[0], '/api/v1/enroll', enrollBody(9001), '192.0.2.1')).status,
        (await ask(replicas[1], '/api/v1/enroll', enrollBody(9002), '192.0.2.1')).status,
      ],
      [200, 200],
    );
  });
});
