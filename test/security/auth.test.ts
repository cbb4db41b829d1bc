import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase, type Harness } from '../support/harness.ts';

const password = 'correct horse battery';

async function login(h: () => Harness, username: string, pass: string, from: string) {
  return h().request('POST', '/api/v1/login', { token: null, body: { username, password: pass }, remoteAddress: from });
}

eachDatabase('logins nobody else can lock, and credentials that end when they should', (h) => {
  test('failing as a victim from one address (and as VICTIM) throttles that address, never the victim elsewhere', async () => {
    await h().muster.users.create('test', { username: 'victim', role: 'operator', password });
    const attacker = '198.51.100.7';
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await login(h, i % 2 ? 'VICTIM' : 'victim', 'wrong-guess', attacker)).status);
    assert.deepEqual([...new Set(statuses.slice(0, 10))], [401], 'ten wrong guesses are heard');
    assert.deepEqual([...new Set(statuses.slice(10))], [429], 'then that address waits');
    const throttled = await login(h, 'victim', password, attacker);
    assert.equal(throttled.status, 429, 'even the right password from the attacking address');
    assert.match(String(throttled.headers['retry-after']), /^\d+$/);
    const victim = await login(h, 'victim', password, '203.0.113.20');
    assert.equal(victim.status, 200, victim.text);
  });

  test('guesses spread over addresses are slowed per user once each address has failed, while a clean address still gets in', async () => {
    await h().muster.users.create('test', { username: 'sprayed', role: 'viewer', password });
    for (let i = 0; i < 10; i++) assert.equal((await login(h, 'sprayed', 'wrong', `192.0.2.${i + 1}`)).status, 401);
    // The user has had its ten failures this minute: a failed address asking again waits, even with the right password.
    assert.equal((await login(h, 'sprayed', 'wrong', '192.0.2.1')).status, 429);
    assert.equal((await login(h, 'sprayed', password, '192.0.2.2')).status, 429);
    assert.equal((await login(h, 'sprayed', password, '192.0.2.200')).status, 200);
  });

  test('a failed login of an unknown name does not keep the name as it was typed', async () => {
    const typed = 'hunter2-is-my-password';
    assert.equal((await login(h, typed, 'x', '192.0.2.77')).status, 401);
    const events = (await h().request('GET', '/api/v1/events?type=auth.login_failed')).body.items;
    assert.ok(events.length > 0);
    assert.ok(!JSON.stringify(events).includes(typed));
    const last = events.at(-1);
    assert.deepEqual(Object.keys(last.data).sort(), ['source', 'unknown_username_sha256', 'username']);
    assert.equal(last.data.username, null);
  });

  test('revoking a token revokes the tokens made with it, at any depth', async () => {
    const parent = (await h().request('POST', '/api/v1/tokens', { body: { name: 'parent', role: 'operator' } })).body;
    const child = (await h().request('POST', '/api/v1/tokens', { token: parent.token, body: { name: 'child', role: 'operator' } })).body;
    const grandchild = (await h().request('POST', '/api/v1/tokens', { token: child.token, body: { name: 'grandchild' } })).body;
    const sibling = (await h().request('POST', '/api/v1/tokens', { body: { name: 'sibling', role: 'operator' } })).body;
    const canCreate = async (token: string) =>
      (await h().request('POST', '/api/v1/machines', { token, body: { identifiers: [{ kind: 'serial', value: `T-${Math.random()}` }] } }))
        .status;
    assert.equal(await canCreate(grandchild.token), 201);
    assert.equal((await h().request('DELETE', `/api/v1/tokens/${parent.id}`)).status, 200);
    assert.deepEqual(
      [await canCreate(parent.token), await canCreate(child.token), await canCreate(grandchild.token), await canCreate(sibling.token)],
      [401, 401, 401, 201],
    );
    const revoked = (await h().request('GET', '/api/v1/events?type=token.revoked')).body.items.map(
      (e: { data: { name: string } }) => e.data.name,
    );
    assert.deepEqual(revoked.slice(-3), ['parent', 'child', 'grandchild']);
  });

  test('a password change or reset ends the sessions made before it', async () => {
    await h().muster.users.create('test', { username: 'moving', role: 'operator', password });
    const old = (await login(h, 'moving', password, '192.0.2.90')).body.token;
    const other = (await login(h, 'moving', password, '192.0.2.91')).body.token;
    assert.equal((await h().request('GET', '/api/v1/me', { token: old })).status, 200);
    const changed = await h().request('PUT', '/api/v1/users/moving', {
      token: old,
      body: { password: 'a new long passphrase', current_password: password },
    });
    assert.equal(changed.status, 200, changed.text);
    for (const token of [old, other]) {
      const refused = await h().request('GET', '/api/v1/me', { token });
      assert.equal(refused.status, 401);
      assert.equal(refused.body.code, 'invalid_token');
    }
    const fresh = (await login(h, 'moving', 'a new long passphrase', '192.0.2.92')).body.token;
    assert.equal((await h().request('GET', '/api/v1/me', { token: fresh })).status, 200);
    // An admin's reset ends the user's sessions too.
    assert.equal((await h().request('PUT', '/api/v1/users/moving', { body: { password: 'reset by the admin' } })).status, 200);
    assert.equal((await h().request('GET', '/api/v1/me', { token: fresh })).status, 401);
  });

  test("a token never acts above its own role: a viewer-scoped token of an admin cannot revoke the admin's admin tokens", async () => {
    const adminToken = (await h().request('POST', '/api/v1/tokens', { body: { name: 'admin-automation', role: 'admin' } })).body;
    const viewerToken = (await h().request('POST', '/api/v1/tokens', { body: { name: 'read-only', role: 'viewer' } })).body;
    const refused = await h().request('DELETE', `/api/v1/tokens/${adminToken.id}`, { token: viewerToken.token });
    assert.equal(refused.status, 403, refused.text);
    assert.equal((await h().request('GET', '/api/v1/me', { token: adminToken.token })).status, 200, 'the admin token still works');
    const above = await h().request('POST', '/api/v1/tokens', { token: viewerToken.token, body: { name: 'escalate', role: 'admin' } });
    assert.equal(above.status, 403);
    assert.equal(
      (await h().request('POST', '/api/v1/users', { token: viewerToken.token, body: { username: 'sneaky', password, role: 'admin' } }))
        .status,
      403,
    );
    assert.equal(
      (await h().request('DELETE', `/api/v1/tokens/${viewerToken.id}`, { token: viewerToken.token })).status,
      200,
      'it may revoke itself',
    );
  });
});
