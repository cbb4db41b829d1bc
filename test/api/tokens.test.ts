import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

eachDatabase('API tokens: /api/v1/tokens', (h) => {
  test('a token is shown once, works as a bearer, is listed without its secret, and stops when revoked', async () => {
    const created = await h().request('POST', '/api/v1/tokens', { body: { name: 'ci', role: 'viewer', expires_in: '30d' } });
    assert.equal(created.status, 201, created.text);
    const secret = created.body.token as string;
    assert.match(secret, /^mst_/);
    assert.equal((await h().request('GET', '/api/v1/machines', { token: secret })).status, 200);
    assertProblem(await h().request('POST', '/api/v1/fleets', { token: secret, body: { name: 'as-viewer' } }), 'forbidden');
    const listed = await h().request('GET', '/api/v1/tokens');
    assert.ok(listed.body.items.some((t: { id: string }) => t.id === created.body.id));
    assert.ok(!listed.text.includes(secret) && !listed.text.includes('token_hash'));
    const revoked = await h().request('DELETE', `/api/v1/tokens/${created.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_at);
    assertProblem(await h().request('GET', '/api/v1/machines', { token: secret }), 'invalid_token');
  });

  test('no token above its maker’s role; others’ tokens are invisible to non-admins', async () => {
    const operator = await h().userToken('operator', 'tok-operator');
    assertProblem(await h().request('POST', '/api/v1/tokens', { token: operator, body: { name: 'up', role: 'admin' } }), 'forbidden');
    const own = await h().request('POST', '/api/v1/tokens', { token: operator, body: { name: 'mine' } });
    assert.equal(own.body.role, 'operator');
    const adminToken = (await h().request('POST', '/api/v1/tokens', { body: { name: 'admin-only' } })).body;
    const seen = (await h().request('GET', '/api/v1/tokens', { token: operator })).body.items.map((t: { id: string }) => t.id);
    assert.deepEqual(seen, [own.body.id]);
    assertProblem(await h().request('DELETE', `/api/v1/tokens/${adminToken.id}`, { token: operator }), 'not_found');
    assert.equal((await h().request('GET', '/api/v1/machines', { token: adminToken.token })).status, 200);
  });

  test('bad input is a 400 and makes no token', async () => {
    const before = (await h().request('GET', '/api/v1/tokens?limit=100')).body.items.length;
    for (const body of [
      {},
      { name: '' },
      { name: 'x', role: 'root' },
      { name: 'x', expires_in: 'soon' },
      { name: 'x', scope: 'all' },
      { name: 'a\u0000b' },
    ]) {
      assertProblem(await h().request('POST', '/api/v1/tokens', { body }), 'validation_failed');
    }
    assert.equal((await h().request('GET', '/api/v1/tokens?limit=100')).body.items.length, before);
    assertProblem(await h().request('DELETE', '/api/v1/tokens/t_nosuchtoken'), 'not_found');
  });
});
