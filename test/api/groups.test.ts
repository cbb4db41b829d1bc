import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase, enrollBody } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

eachDatabase('Groups: /api/v1/groups', (h) => {
  const enroll = async (n: number) => (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n) })).body.id as string;

  test('create, read by id or name, update tags, and delete', async () => {
    const created = await h().request('POST', '/api/v1/groups', { body: { name: 'canary', tags: ['a'] } });
    assert.equal(created.status, 201, created.text);
    for (const ref of [created.body.id, 'canary']) assert.equal((await h().request('GET', `/api/v1/groups/${ref}`)).body.name, 'canary');
    const updated = await h().request('PUT', '/api/v1/groups/canary', { body: { tags: ['b', 'c'], description: 'first wave' } });
    assert.deepEqual([updated.body.tags, updated.body.description], [['b', 'c'], 'first wave']);
    assert.equal((await h().request('DELETE', '/api/v1/groups/canary')).status, 204);
    assertProblem(await h().request('GET', '/api/v1/groups/canary'), 'not_found');
    assertProblem(await h().request('DELETE', '/api/v1/groups/canary'), 'not_found');
  });

  test('members are added once, listed, filtered on, and removed', async () => {
    assert.equal((await h().request('POST', '/api/v1/groups', { body: { name: 'wave' } })).status, 201);
    const [a, b] = [await enroll(601), await enroll(602)];
    for (const id of [a, a, b]) assert.equal((await h().request('PUT', `/api/v1/groups/wave/machines/${id}`)).status, 200);
    const members = await h().request('GET', '/api/v1/groups/wave/machines');
    assert.deepEqual(members.body.items.map((m: { id: string }) => m.id).sort(), [a, b].sort());
    const listed = await h().request('GET', '/api/v1/machines?group=wave');
    assert.equal(listed.body.items.length, 2);
    assert.equal((await h().request('DELETE', `/api/v1/groups/wave/machines/${a}`)).status, 200);
    assert.deepEqual(
      (await h().request('GET', '/api/v1/groups/wave/machines')).body.items.map((m: { id: string }) => m.id),
      [b],
    );
    assertProblem(await h().request('PUT', '/api/v1/groups/wave/machines/m_nosuchmachine'), 'machine_not_found');
  });

  test('viewers read, operators write; a duplicate name already exists', async () => {
    const viewer = await h().userToken('viewer', 'group-viewer');
    assert.equal((await h().request('GET', '/api/v1/groups', { token: viewer })).status, 200);
    assertProblem(await h().request('POST', '/api/v1/groups', { token: viewer, body: { name: 'v' } }), 'forbidden');
    assertProblem(await h().request('POST', '/api/v1/groups', { body: { name: 'wave' } }), 'already_exists');
  });

  test('bad input is a 400 and changes nothing', async () => {
    for (const body of [{ name: '' }, { name: 'a/b' }, { name: 'ok', tags: 'x' }, { name: 'ok', owner: 'me' }]) {
      assertProblem(await h().request('POST', '/api/v1/groups', { body }), 'validation_failed');
    }
    assertProblem(await h().request('PUT', '/api/v1/groups/wave', { body: {} }), 'validation_failed');
    assertProblem(await h().request('GET', '/api/v1/groups/ok'), 'not_found');
  });
});
