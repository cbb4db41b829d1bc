import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { runCli, tempDir } from './cli-process.ts';

describe('muster user create', () => {
  test('a role that does not exist exits 2 and creates nothing', async () => {
    const dataDir = tempDir();
    const result = await runCli(['user', 'create', 'mallory', '--role', 'root', '--password-stdin', '--data-dir', dataDir], {
      input: 'long enough password',
    });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^muster: option '--role <role>' argument 'root' is invalid\. Allowed choices are admin, operator, viewer;/,
    );
    assert.deepEqual(await readdir(dataDir), []);
  });

  test('a missing role exits 2 and creates nothing', async () => {
    const dataDir = tempDir();
    const result = await runCli(['user', 'create', 'mallory', '--password-stdin', '--data-dir', dataDir], {
      input: 'long enough password',
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /required option '--role <role>' not specified/);
    assert.deepEqual(await readdir(dataDir), []);
  });

  test('without --password-stdin and without a terminal it says how to give the password', async () => {
    const dataDir = tempDir();
    const result = await runCli(['user', 'create', 'alice', '--role', 'admin', '--data-dir', dataDir]);
    assert.deepEqual(result, {
      code: 2,
      stdout: '',
      stderr: 'muster: no terminal to ask for the password for alice: pipe it in with --password-stdin\n',
    });
    assert.deepEqual(await readdir(dataDir), []);
  });

  test('an empty stdin is refused rather than taken as an empty password', async () => {
    const dataDir = tempDir();
    const result = await runCli(['user', 'create', 'alice', '--role', 'admin', '--password-stdin', '--data-dir', dataDir], { input: '\n' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /stdin was empty/);
    assert.deepEqual(await readdir(dataDir), []);
  });
});
