import assert from 'node:assert/strict';
import { test } from 'node:test';
import { treeFiles } from '../boot/support.ts';
import { eachDatabase } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

eachDatabase('Pi boot trees: /api/v1/pi/trees', (h) => {
  test('put creates a tree with its rule, get and list show it, put again replaces it, delete removes both', async () => {
    const files = await treeFiles(h(), { 'config.txt': '[all]\n', 'cmdline.txt.liquid': 'serial={{ serial }}' });
    const put = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files, serial_pattern: 'ab*' } });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(
      put.body.files.map((f: { path: string; template: boolean }) => [f.path, f.template]),
      [
        ['cmdline.txt', true],
        ['config.txt', false],
      ],
    );
    assert.equal(put.body.serial_pattern, 'ab*');
    assert.equal((await h().request('GET', '/api/v1/rules/lab')).body.pi_tree, 'lab');
    assert.equal((await h().request('GET', '/api/v1/pi/trees/lab')).body.name, 'lab');
    assert.ok((await h().request('GET', '/api/v1/pi/trees')).body.items.some((t: { name: string }) => t.name === 'lab'));
    const replaced = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files: files.slice(1), serial_pattern: null } });
    assert.deepEqual([replaced.body.files.length, replaced.body.serial_pattern], [1, null]);
    assertProblem(await h().request('GET', '/api/v1/rules/lab'), 'not_found');
    assert.equal((await h().request('DELETE', '/api/v1/pi/trees/lab')).status, 204);
    assertProblem(await h().request('GET', '/api/v1/pi/trees/lab'), 'not_found');
  });

  test('a tree in use by a machine or named by another rule is not deleted', async () => {
    const files = await treeFiles(h(), { 'config.txt': '[pi4]\n' });
    await h().request('PUT', '/api/v1/pi/trees/used', { body: { files } });
    await h().request('PUT', '/api/v1/rules/sends-there', {
      body: { door: 'pi', serial_pattern: 'cc*', action: 'discover', pi_tree: 'used' },
    });
    assertProblem(await h().request('DELETE', '/api/v1/pi/trees/used'), 'conflict');
    await h().request('DELETE', '/api/v1/rules/sends-there');
    const provisioned = await h().request('POST', '/api/v1/pi/provision', { body: { serial: 'cc000001', tree: 'used' } });
    assert.equal(provisioned.status, 201, provisioned.text);
    assertProblem(await h().request('DELETE', '/api/v1/pi/trees/used'), 'conflict');
  });

  test('viewers read, operators write', async () => {
    const viewer = await h().userToken('viewer', 'pi-viewer');
    assert.equal((await h().request('GET', '/api/v1/pi/trees', { token: viewer })).status, 200);
    assertProblem(await h().request('PUT', '/api/v1/pi/trees/v', { token: viewer, body: { files: [] } }), 'forbidden');
    assertProblem(await h().request('DELETE', '/api/v1/pi/trees/used', { token: viewer }), 'forbidden');
  });

  test('bad input is a 400 and writes no tree', async () => {
    const [file] = await treeFiles(h(), { 'start4.elf': 'firmware' });
    const bad = [
      { files: [{ ...file, path: '../escape' }] },
      { files: [{ ...file, path: '/abs' }] },
      { files: [file, file] },
      { files: [{ ...file, sha256: '0'.repeat(64) }] },
      { files: [{ ...file, size: file.size + 1 }] },
      { files: [file], owner: 'me' },
    ];
    for (const body of bad) assertProblem(await h().request('PUT', '/api/v1/pi/trees/broken', { body }), 'validation_failed');
    const template = (await treeFiles(h(), { 'x.txt.liquid': '{% include "/etc/passwd" %}' }))[0];
    assertProblem(await h().request('PUT', '/api/v1/pi/trees/broken', { body: { files: [template] } }), 'validation_failed');
    assertProblem(await h().request('PUT', '/api/v1/pi/trees/bad%20name', { body: { files: [file] } }), 'validation_failed');
    assertProblem(await h().request('GET', '/api/v1/pi/trees/broken'), 'not_found');
  });
});
