import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

const password = 'correct horse battery';

eachDatabase('Users: /api/v1/users', (h) => {
  test('an admin creates, reads, lists, changes and deletes users; no password hash is ever answered', async () => {
    const created = await h().request('POST', '/api/v1/users', {
      body: { username: 'dana', password, role: 'viewer', email: 'dana@example.com' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.role, 'viewer');
    assert.ok(!('password_hash' in created.body) && !created.text.includes(password));
    for (const ref of [created.body.id, 'dana']) assert.equal((await h().request('GET', `/api/v1/users/${ref}`)).body.id, created.body.id);
    const listed = await h().request('GET', '/api/v1/users?total=true');
    assert.ok(listed.body.total >= 2);
    assert.ok(!listed.text.includes('password_hash'));
    const promoted = await h().request('PUT', '/api/v1/users/dana', { body: { role: 'operator' } });
    assert.equal(promoted.body.role, 'operator');
    assert.equal((await h().request('DELETE', '/api/v1/users/dana')).status, 204);
    assertProblem(await h().request('GET', '/api/v1/users/dana'), 'not_found');
  });

  test('a user reads and changes only their own account, and only its password with the current one', async () => {
    const token = await h().userToken('operator', 'erin');
    assert.equal((await h().request('GET', '/api/v1/users/erin', { token })).body.username, 'erin');
    assertProblem(await h().request('GET', '/api/v1/users/admin', { token }), 'forbidden');
    assertProblem(await h().request('GET', '/api/v1/users', { token }), 'forbidden');
    assertProblem(await h().request('PUT', '/api/v1/users/erin', { token, body: { role: 'admin' } }), 'forbidden');
    assertProblem(
      await h().request('PUT', '/api/v1/users/erin', { token, body: { password: 'a new long password' } }),
      'validation_failed',
    );
    // A non-admin learns nothing of who exists: another name is forbidden, not "not found".
    assertProblem(await h().request('PUT', '/api/v1/users/nobody-here', { token, body: { password: 'x'.repeat(12) } }), 'forbidden');
    assertProblem(
      await h().request('POST', '/api/v1/users', { token, body: { username: 'sneaky', password, role: 'admin' } }),
      'forbidden',
    );
  });

  test('the last admin can be neither demoted nor deleted', async () => {
    const admins = (await h().request('GET', '/api/v1/users?limit=100')).body.items.filter((u: { role: string }) => u.role === 'admin');
    assert.equal(admins.length, 1);
    assertProblem(await h().request('PUT', `/api/v1/users/${admins[0].id}`, { body: { role: 'viewer' } }), 'conflict');
    assertProblem(await h().request('DELETE', `/api/v1/users/${admins[0].id}`), 'conflict');
  });

  test('bad input is a 400 and creates nothing; a taken name already exists', async () => {
    for (const body of [
      { username: 'short-pw', password: 'x', role: 'viewer' },
      { username: 'no role', password },
      { username: 'bad role', password, role: 'root' },
      { username: 'extra', password, role: 'viewer', admin: true },
      { username: 'x'.repeat(200), password, role: 'viewer' },
    ]) {
      assertProblem(await h().request('POST', '/api/v1/users', { body }), 'validation_failed');
    }
    assertProblem(await h().request('PUT', '/api/v1/users/admin', { body: {} }), 'validation_failed');
    assertProblem(await h().request('POST', '/api/v1/users', { body: { username: 'admin', password, role: 'viewer' } }), 'already_exists');
  });
});
