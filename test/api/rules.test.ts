import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

eachDatabase('Discovery rules: /api/v1/rules', (h) => {
  test('put creates or replaces, get reads, the list is in the order rules are tried, delete removes', async () => {
    const put = await h().request('PUT', '/api/v1/rules/lab-macs', {
      body: { door: 'ipxe', mac_prefix: '52-54-00', action: 'discover', priority: 10, labels: { site: 'lab' } },
    });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.mac_prefix, '52:54:00', 'a MAC prefix is stored in one spelling');
    await h().request('PUT', '/api/v1/rules/quiet', { body: { serial_pattern: 'dead*', action: 'ignore', priority: 5 } });
    const replaced = await h().request('PUT', '/api/v1/rules/lab-macs', {
      body: { door: 'ipxe', mac_prefix: '52:54:00', action: 'refuse' },
    });
    assert.equal(replaced.body.action, 'refuse');
    assert.equal(replaced.body.created_at, put.body.created_at, 'replacing keeps the creation time');
    const order = (await h().request('GET', '/api/v1/rules')).body.items.map((r: { name: string }) => r.name);
    assert.deepEqual(order.slice(0, 2), ['quiet', 'lab-macs']);
    assert.equal((await h().request('GET', '/api/v1/rules/quiet')).body.serial_pattern, 'dead*');
    assert.equal((await h().request('DELETE', '/api/v1/rules/quiet')).status, 204);
    assertProblem(await h().request('DELETE', '/api/v1/rules/quiet'), 'not_found');
  });

  test('a rule naming a Pi tree that does not exist is refused', async () => {
    const reply = await h().request('PUT', '/api/v1/rules/pis', {
      body: { door: 'pi', serial_pattern: '*', action: 'discover', pi_tree: 'nosuch' },
    });
    assert.deepEqual(assertProblem(reply, 'validation_failed'), ['/pi_tree']);
    assertProblem(await h().request('GET', '/api/v1/rules/pis'), 'not_found');
  });

  test('viewers read, operators write', async () => {
    const viewer = await h().userToken('viewer', 'rule-viewer');
    assert.equal((await h().request('GET', '/api/v1/rules', { token: viewer })).status, 200);
    assertProblem(await h().request('PUT', '/api/v1/rules/v', { token: viewer, body: { action: 'ignore' } }), 'forbidden');
    assertProblem(await h().request('DELETE', '/api/v1/rules/lab-macs', { token: viewer }), 'forbidden');
  });

  test('bad input is a 400 and writes no rule', async () => {
    for (const [name, body] of [
      ['ok', { action: 'delete-everything' }],
      ['ok', { action: 'ignore', door: 'smtp' }],
      ['ok', { action: 'ignore', mac_prefix: 'zz:zz' }],
      ['ok', { action: 'ignore', priority: -1 }],
      ['ok', { action: 'ignore', labels: { 'bad key!': 'x' } }],
      ['ok', { action: 'ignore', when: 'always' }],
      ['bad name!', { action: 'ignore' }],
    ] as const) {
      assertProblem(await h().request('PUT', `/api/v1/rules/${encodeURIComponent(name)}`, { body }), 'validation_failed');
    }
    assertProblem(await h().request('GET', '/api/v1/rules/ok'), 'not_found');
  });
});
