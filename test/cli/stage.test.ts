import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AdminApi, jetsonSpec, startAdminApi } from '../support/admin-api.ts';
import { type Harness, startHarness } from '../support/harness.ts';
import { runCli, tempDir } from './cli-process.ts';

// The CLI side of seed 002: `muster endpoint set` with its token on stdin, and `muster stage` writing device.conf
// into a root filesystem, mode 0600, with values that log in; nothing written when the hook fails, nothing written
// through a symbolic link that leads out of the root.

const bearer = 'stage-cli-token';

const loginCheck = {
  name: 'login',
  endpoint: 'loader',
  request: { method: 'POST', path: '/login', body: { email: '{{ vars.email }}', password: '{{ secret }}' } },
};

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('muster endpoint and muster stage against a real server and admin API', () => {
  let h: Harness;
  let api: AdminApi;
  let env: Record<string, string>;
  const cli = (args: string[], input?: string) => runCli(args, { env, input });

  before(async () => {
    h = await startHarness('sqlite');
    api = await startAdminApi();
    api.switches.bearer = bearer;
    env = { MUSTER_SERVER: `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`, MUSTER_TOKEN: h.admin };
    for (const name of ['admin-api', 'loader']) {
      const set = await cli(['endpoint', 'set', name, api.url, '--bearer-stdin'], `${bearer}\n`);
      assert.equal(set.code, 0, set.stderr);
    }
    for (const [name, checks] of [
      ['jetson', [{ name: 'health', endpoint: 'loader', request: { method: 'GET', path: '/health' } }, loginCheck]],
      ['jetson-missing-check', [{ name: 'missing', endpoint: 'loader', request: { method: 'GET', path: '/missing' } }]],
    ] as const) {
      const applied = await h.request('PUT', `/api/v1/profiles/${name}`, { body: { spec: jetsonSpec({ checks: [...checks] }) } });
      assert.equal(applied.status, 200, applied.text);
    }
  });
  after(async () => {
    await api?.close();
    await h?.muster.close();
    await h?.database.drop();
  });

  test('endpoint ls shows that a bearer token is set, never the token; rm is refused while a profile calls it', async () => {
    const listed = await cli(['endpoint', 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^admin-api +${api.url} +set `, 'm'));
    assert.ok(!listed.stdout.includes(bearer));
    const json = await cli(['--json', 'endpoint', 'ls']);
    assert.ok(!json.stdout.includes(bearer));
    assert.deepEqual(
      JSON.parse(json.stdout).map((e: { name: string; has_credential: boolean }) => [e.name, e.has_credential]),
      [
        ['admin-api', true],
        ['loader', true],
      ],
    );
    const removed = await cli(['endpoint', 'rm', 'admin-api']);
    assert.equal(removed.code, 4, removed.stderr);
    assert.match(removed.stderr, /used by profile jetson/);
  });

  test('stage writes etc/azaion/device.conf with mode 0600 and KEY=VALUE lines that log in; it prints paths, never contents', async () => {
    const root = tempDir('muster-rootfs-');
    const result = await cli(['stage', '--serial', 'AZJN-0042', '--profile', 'jetson', '--rootfs', root, '--verify']);
    assert.equal(result.code, 0, result.stderr);
    const path = join(root, 'etc', 'azaion', 'device.conf');
    assert.equal(modeOf(path), '0600');
    assert.equal(modeOf(join(root, 'etc', 'azaion')), '0755');
    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[2], '');
    assert.equal(lines[0], 'AZAION_DEVICE_EMAIL=azaion-jetson-0042@azaion.com');
    const password = lines[1].replace(/^AZAION_DEVICE_PASSWORD=/, '');
    assert.match(password, /^[0-9a-f]{32}$/);
    assert.deepEqual(filesUnder(root), ['etc', join('etc', 'azaion'), join('etc', 'azaion', 'device.conf')], 'no temporary file is left');

    const login = await fetch(`${api.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ email: 'azaion-jetson-0042@azaion.com', password }),
    });
    assert.deepEqual([login.status, await login.json()], [200, { status: 'ok' }]);

    assert.match(
      result.stdout,
      /^staged serial AZJN-0042: machine m_\w+ \(new\), hostname azjn-0042, profile jetson v1, account created, secret made$/m,
    );
    assert.match(result.stdout, new RegExp(`^${path} +0600 +root:root`, 'm'));
    assert.match(result.stdout, /^health +yes +200$/m);
    assert.match(result.stdout, /^login +yes +200$/m);
    assert.ok(!result.stdout.includes(password) && !result.stderr.includes(password), 'the secret is not printed');
  });

  test('stage again with --json prints the answer without file contents, and the file keeps the same secret', async () => {
    const root = tempDir('muster-rootfs-');
    const result = await cli(['--json', 'stage', '--serial', 'AZJN-0042', '--rootfs', root]);
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout);
    const path = join(root, 'etc', 'azaion', 'device.conf');
    assert.deepEqual(answer.files, [
      {
        path: 'etc/azaion/device.conf',
        mode: '0600',
        owner: 'root:root',
        sha256: answer.files[0].sha256,
        written: path,
        owner_set: answer.files[0].owner_set,
      },
    ]);
    assert.deepEqual([answer.account, answer.secret, answer.created], ['updated', 'kept', false]);
    assert.equal(api.users.get('azaion-jetson-0042@azaion.com')?.password, readFileSync(path, 'utf8').split('\n')[1].split('=')[1]);
    assert.equal(api.users.size, 1);
  });

  test('a failing hook writes nothing and exits non-zero', async () => {
    const root = tempDir('muster-rootfs-');
    api.switches.createStatus = 500;
    try {
      const result = await cli(['stage', '--serial', 'AZJN-0500', '--profile', 'jetson', '--rootfs', root]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^muster: The account hook failed, so nothing was staged: POST \/users on admin-api: answered 500\n$/);
      assert.equal(result.stdout, '');
    } finally {
      api.reset();
      api.switches.bearer = bearer;
    }
    assert.deepEqual(filesUnder(root), []);
    assert.equal((await h.request('GET', '/api/v1/machines/serial:AZJN-0500')).status, 404);
  });

  test('a symbolic link in the root that leads out of it is refused, and nothing is written outside', async () => {
    const root = tempDir('muster-rootfs-');
    const outside = tempDir('muster-outside-');
    symlinkSync(outside, join(root, 'etc'));
    const result = await cli(['stage', '--serial', 'AZJN-0042', '--rootfs', root]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /refusing to write etc\/azaion\/device\.conf: etc is a symbolic link leading out of the root/);
    assert.match(result.stderr, /run the same command again, which keeps its secret/);
    assert.deepEqual(filesUnder(outside), []);

    const inner = tempDir('muster-rootfs-');
    mkdirSync(join(inner, 'real-etc'));
    symlinkSync('real-etc', join(inner, 'etc'));
    const within = await cli(['stage', '--serial', 'AZJN-0042', '--rootfs', inner]);
    assert.equal(within.code, 0, within.stderr);
    assert.equal(modeOf(join(inner, 'real-etc', 'azaion', 'device.conf')), '0600', 'a link that stays inside the root is followed');
  });

  test('a failing check exits 1 after the account step, and the files are written', async () => {
    const root = tempDir('muster-rootfs-');
    const result = await cli(['stage', '--serial', 'AZJN-0600', '--profile', 'jetson-missing-check', '--rootfs', root, '--verify']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /check missing \(404\) failed; the account step had already run and the files are written/);
    assert.ok(api.users.has('azaion-jetson-0600@azaion.com'));
    assert.equal(modeOf(join(root, 'etc', 'azaion', 'device.conf')), '0600');
  });

  test('a --rootfs that does not exist is refused before anything is staged', async () => {
    const before = api.requests.length;
    const result = await cli(['stage', '--serial', 'AZJN-0700', '--profile', 'jetson', '--rootfs', join(tempDir(), 'missing')]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /does not exist/);
    assert.equal(api.requests.length, before);
  });
});
