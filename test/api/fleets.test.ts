import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase, enrollBody } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

eachDatabase('Fleets: /api/v1/fleets', (h) => {
  test('create, read, list, describe, and delete an empty fleet', async () => {
    const created = await h().request('POST', '/api/v1/fleets', { body: { name: 'lab', description: 'the lab' } });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(
      {
        name: created.body.name,
        description: created.body.description,
        machine_count: created.body.machine_count,
        next_seq: created.body.next_seq,
      },
      { name: 'lab', description: 'the lab', machine_count: 0, next_seq: 1 },
    );
    for (const ref of [created.body.id, 'lab']) assert.equal((await h().request('GET', `/api/v1/fleets/${ref}`)).body.id, created.body.id);
    const listed = await h().request('GET', '/api/v1/fleets');
    assert.ok(listed.body.items.some((f: { name: string }) => f.name === 'lab'));
    const updated = await h().request('PUT', '/api/v1/fleets/lab', { body: { description: 'moved' } });
    assert.equal(updated.body.description, 'moved');
    assert.equal((await h().request('DELETE', '/api/v1/fleets/lab')).status, 204);
    assertProblem(await h().request('GET', '/api/v1/fleets/lab'), 'not_found');
  });

  test('a name is taken once; a fleet with machines cannot be deleted', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } })).status, 201);
    assertProblem(await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } }), 'already_exists');
    const machine = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(501) })).body;
    assert.equal((await h().request('PUT', `/api/v1/machines/${machine.id}`, { body: { fleet: 'edge' } })).status, 200);
    assertProblem(await h().request('DELETE', '/api/v1/fleets/edge'), 'conflict');
    assert.equal((await h().request('GET', '/api/v1/fleets/edge')).body.machine_count, 1);
  });

  test('viewers read, operators write', async () => {
    const viewer = await h().userToken('viewer', 'fleet-viewer');
    const operator = await h().userToken('operator', 'fleet-operator');
    assert.equal((await h().request('GET', '/api/v1/fleets', { token: viewer })).status, 200);
    assertProblem(await h().request('POST', '/api/v1/fleets', { token: viewer, body: { name: 'nope' } }), 'forbidden');
    assert.equal((await h().request('POST', '/api/v1/fleets', { token: operator, body: { name: 'ops' } })).status, 201);
    assertProblem(await h().request('GET', '/api/v1/fleets', { token: null }), 'unauthenticated');
  });

  test('bad input is a 400 that names the field, and creates nothing', async () => {
    for (const body of [
      { name: '-dash' },
      { name: 'a b' },
      { name: 'x'.repeat(65) },
      { name: 'ok', extra: 1 },
      {},
      { name: 'ok', description: 'a\u202eb' },
    ]) {
      const reply = await h().request('POST', '/api/v1/fleets', { body });
      assertProblem(reply, 'validation_failed');
    }
    assertProblem(await h().request('PUT', '/api/v1/fleets/edge', { body: { name: 'renamed' } }), 'validation_failed');
    const names = (await h().request('GET', '/api/v1/fleets')).body.items.map((f: { name: string }) => f.name);
    assert.ok(!names.includes('ok'));
  });
});
