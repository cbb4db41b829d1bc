import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { MusterError } from '@muster/contract';
import { configDir, readStoredLogin, writeStoredLogin } from '../../packages/cli/src/config-store.ts';
import { normalizeServer, resolveConnection } from '../../packages/cli/src/session.ts';
import { runCli, tempDir } from './cli-process.ts';

describe('config store', () => {
  test('the stored login is written 0600 in a 0700 directory', async () => {
    const dir = join(tempDir(), 'nested', 'muster');
    const env = { MUSTER_CONFIG_DIR: dir };
    const path = await writeStoredLogin({ server: 'http://muster.lan:8080', token: 'secret', username: 'alice' }, env);
    assert.equal(path, join(dir, 'config.json'));
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { server: 'http://muster.lan:8080', token: 'secret', username: 'alice' });
  });

  test('rewriting a login that was readable by others makes it 0600 again', async () => {
    const dir = tempDir();
    const path = join(dir, 'config.json');
    await writeFile(path, '{}', { mode: 0o644 });
    await writeStoredLogin({ server: 'http://a:1' }, { MUSTER_CONFIG_DIR: dir });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('reading gives back what was written, and {} when nothing was', async () => {
    const env = { MUSTER_CONFIG_DIR: tempDir() };
    assert.deepEqual(await readStoredLogin(env), {});
    await writeStoredLogin({ server: 'http://a:1', token: 't', username: 'u' }, env);
    assert.deepEqual(await readStoredLogin(env), { server: 'http://a:1', token: 't', username: 'u' });
  });

  test('a corrupt config file is an error that says how to fix it', async () => {
    const dir = tempDir();
    await writeFile(join(dir, 'config.json'), '{not json');
    await assert.rejects(readStoredLogin({ MUSTER_CONFIG_DIR: dir }), (error: MusterError) => {
      assert.equal(error.code, 'bad_request');
      assert.match(error.message, /is not valid JSON: fix or delete it/);
      return true;
    });
  });

  test('the directory is MUSTER_CONFIG_DIR, else XDG_CONFIG_HOME/muster, else ~/.config/muster', () => {
    assert.equal(configDir({ MUSTER_CONFIG_DIR: '/x', XDG_CONFIG_HOME: '/y' }), '/x');
    assert.equal(configDir({ XDG_CONFIG_HOME: '/y' }), '/y/muster');
    assert.match(configDir({}), /\/\.config\/muster$/);
  });

  test('logout forgets the token and keeps the server and username', async () => {
    const dir = tempDir();
    await writeStoredLogin({ server: 'http://a:1', token: 't', username: 'u' }, { MUSTER_CONFIG_DIR: dir });
    const result = await runCli(['logout'], { env: { MUSTER_CONFIG_DIR: dir } });
    assert.deepEqual(result, { code: 0, stdout: 'Logged out of http://a:1\n', stderr: '' });
    assert.deepEqual(await readStoredLogin({ MUSTER_CONFIG_DIR: dir }), { server: 'http://a:1', username: 'u' });
  });
});

describe('server and token resolution', () => {
  const stored = { server: 'http://muster.lan:8080/', token: 'stored-token', username: 'alice' };

  test('the stored login is used when nothing else is given', () => {
    assert.deepEqual(resolveConnection({}, stored), {
      server: 'http://muster.lan:8080',
      token: 'stored-token',
      tokenHint: 'log in again with `muster login`',
    });
  });

  test('--token (or MUSTER_TOKEN) wins over the stored token', () => {
    assert.deepEqual(resolveConnection({ token: 'given' }, stored), {
      server: 'http://muster.lan:8080',
      token: 'given',
      tokenHint: 'check --token or MUSTER_TOKEN',
    });
  });

  test('the stored token is never sent to a different server', () => {
    assert.deepEqual(resolveConnection({ server: 'http://other:8080' }, stored), {
      server: 'http://other:8080',
      token: undefined,
      tokenHint: undefined,
    });
  });

  test('without a login the default server is local', () => {
    assert.deepEqual(resolveConnection({}, {}), { server: 'http://127.0.0.1:8080', token: undefined, tokenHint: undefined });
  });

  test('host:port is accepted as a server and becomes an http URL', () => {
    assert.equal(normalizeServer('muster.lan:8080'), 'http://muster.lan:8080');
    assert.equal(normalizeServer('https://muster.example/prefix/'), 'https://muster.example/prefix');
    assert.throws(() => normalizeServer('ftp://muster'), /must be an http:\/\/ or https:\/\/ URL/);
  });
});
