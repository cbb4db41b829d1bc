import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { readStoredLogin } from '../../packages/cli/src/config-store.ts';
import { runCli, tempDir } from './cli-process.ts';
import { type FakeServer, problem, type RecordedRequest, startFakeServer } from './fake-server.ts';

const machine = (id: string, labels: Record<string, string> = {}) => ({
  id,
  state: 'enrolled',
  status: 'enrolled',
  hostname: null,
  description: '',
  service_tag: null,
  mac_address: null,
  fleet: null,
  fleet_seq: null,
  labels,
  identifiers: [],
  hardware: {},
  nixos_config: '',
  enrolled_at: null,
  last_seen_at: null,
  created_at: '2025-06-01T10:00:00Z',
  updated_at: '2025-06-01T10:00:00Z',
});

const user = {
  id: 'u_1',
  username: 'alice',
  email: '',
  role: 'admin',
  created_at: '2025-06-01T10:00:00Z',
  updated_at: '2025-06-01T10:00:00Z',
  last_login_at: null,
};

function machinesPage(request: RecordedRequest) {
  const query = new URL(request.url, 'http://x').searchParams;
  if (query.get('total') === 'true') return { body: { items: [machine('m_1')], next_cursor: 'c1', total: 1234 } };
  if (query.get('cursor') === 'c1') return { body: { items: [machine('m_2')], next_cursor: null } };
  return { body: { items: [machine('m_1')], next_cursor: 'c1' } };
}

describe('what muster sends', () => {
  let server: FakeServer;

  before(async () => {
    server = await startFakeServer({
      'GET /api/v1/machines': machinesPage,
      'GET /api/v1/machines/mac%3A00%3A11%3A22%3A33%3A44%3A55': () => ({ body: machine('m_1', { rack: 'r1', spare: 'yes' }) }),
      'PUT /api/v1/machines/mac%3A00%3A11%3A22%3A33%3A44%3A55': (r) => ({ body: { ...machine('m_1'), ...(r.body as object) } }),
      'PUT /api/v1/groups/canary/machines/m_1': () => ({ status: 204 }),
      'PUT /api/v1/groups/canary/machines/m_3': () => ({ status: 204 }),
      'PUT /api/v1/groups/canary/machines/m_2': () => problem(404, 'machine_not_found', 'No machine m_2'),
      'POST /api/v1/login': (r) =>
        (r.body as { password: string }).password === 'hunter2hunter2'
          ? { body: { token: 'session-token', expires_at: '2025-06-02T10:00:00Z', user } }
          : problem(401, 'invalid_credentials', 'Username or password is wrong'),
      'GET /api/v1/me': () => ({ body: user }),
      'POST /api/v1/tokens': () => ({
        status: 201,
        body: {
          id: 't_1',
          name: 'ci',
          role: 'operator',
          user_id: 'u_1',
          prefix: 'mst_abc',
          created_at: '2025-06-01T10:00:00Z',
          expires_at: null,
          last_used_at: null,
          revoked_at: null,
          token: 'mst_abcdefsecret',
        },
      }),
      'GET /api/v1/jobs/j_1/log': () => ({ type: 'text/plain', body: 'line 1\nline 2\n' }),
    });
  });
  after(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
  });

  test('a machine ref is one encoded path segment and the token goes in a Bearer header', async () => {
    const result = await runCli(['machine', 'show', 'mac:00:11:22:33:44:55', '--server', server.url, '--token', 'tok']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(server.requests, [
      { method: 'GET', url: '/api/v1/machines/mac%3A00%3A11%3A22%3A33%3A44%3A55', authorization: 'Bearer tok', body: undefined },
    ]);
  });

  test('list filters become query parameters, labels repeated', async () => {
    const args = [
      'machine',
      'ls',
      '--state',
      'ready',
      '--fleet',
      'pis',
      '--label',
      'rack=r1',
      '--label',
      'os',
      '-q',
      'AZJN',
      '--sort',
      'hostname',
    ];
    const result = await runCli([...args, '--order', 'desc', '--limit', '10', '--server', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      server.requests[0].url,
      '/api/v1/machines?state=ready&fleet=pis&label=rack%3Dr1&label=os&q=AZJN&sort=hostname&order=desc&limit=10',
    );
    assert.match(result.stderr, /more items exist: add --all/);
  });

  test('--all follows next_cursor and --json prints every page as one array', async () => {
    const result = await runCli(['machine', 'ls', '--all', '--json', '--server', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      JSON.parse(result.stdout).map((m: { id: string }) => m.id),
      ['m_1', 'm_2'],
    );
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['/api/v1/machines?limit=500', '/api/v1/machines?limit=500&cursor=c1'],
    );
  });

  test('--count asks for the total with one item and prints only the number', async () => {
    const result = await runCli(['machine', 'ls', '--count', '--state', 'failed', '--server', server.url]);
    assert.deepEqual(result, { code: 0, stdout: '1234\n', stderr: '' });
    assert.equal(server.requests[0].url, '/api/v1/machines?state=failed&total=true&limit=1');
  });

  test('--label and --unlabel merge into the current labels and PUT the whole map', async () => {
    const args = ['machine', 'set', 'mac:00:11:22:33:44:55', '--label', 'rack=r2', 'os=nixos', '--unlabel', 'spare', '--no-fleet'];
    const result = await runCli([...args, '--server', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      server.requests.map((r) => [r.method, r.body]),
      [
        ['GET', undefined],
        ['PUT', { fleet: null, labels: { rack: 'r2', os: 'nixos' } }],
      ],
    );
  });

  test('group add goes on past a machine that fails and exits with its code', async () => {
    const result = await runCli(['group', 'add', 'canary', 'm_1', 'm_2', 'm_3', '--server', server.url]);
    assert.deepEqual(result, {
      code: 3,
      stdout: 'added m_1 to group canary\nadded m_3 to group canary\n',
      stderr: 'muster: m_2: No machine m_2\n',
    });
  });

  test('login stores the server, session token and username, and later commands use them', async () => {
    const configDir = tempDir();
    const env = { MUSTER_CONFIG_DIR: configDir };
    const login = await runCli(['login', '--server', server.url, '--username', 'alice', '--password-stdin'], {
      env,
      input: 'hunter2hunter2\n',
    });
    assert.equal(login.code, 0, login.stderr);
    assert.deepEqual(server.requests[0].body, { username: 'alice', password: 'hunter2hunter2' });
    assert.deepEqual(await readStoredLogin(env), { server: server.url, token: 'session-token', username: 'alice' });
    assert.equal((await stat(join(configDir, 'config.json'))).mode & 0o777, 0o600);
    const next = await runCli(['machine', 'ls', '--count'], { env });
    assert.equal(next.code, 0, next.stderr);
    assert.equal(server.requests[1].authorization, 'Bearer session-token');
  });

  test('a wrong password exits 5 and stores nothing', async () => {
    const env = { MUSTER_CONFIG_DIR: tempDir() };
    const result = await runCli(['login', '--server', server.url, '--username', 'alice', '--password-stdin'], { env, input: 'wrong' });
    assert.deepEqual(result, { code: 5, stdout: '', stderr: 'muster: Username or password is wrong\n' });
    assert.deepEqual(await readStoredLogin(env), {});
  });

  test('login without --username and without a terminal says to give --username', async () => {
    const result = await runCli(['login', '--server', server.url, '--password-stdin'], { input: 'x' });
    assert.deepEqual(result, { code: 2, stdout: '', stderr: 'muster: no terminal to ask for the username: give --username\n' });
  });

  test('token create prints the secret on stdout and the shown-once note on stderr', async () => {
    const result = await runCli(['token', 'create', 'ci', '--role', 'operator', '--expires-in', '90d', '--server', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(server.requests[0].body, { name: 'ci', role: 'operator', expires_in: '90d' });
    assert.match(result.stdout, /^token: +mst_abcdefsecret$/m);
    assert.match(result.stderr, /shown only this once/);
  });

  test('job log prints the text as the server sent it', async () => {
    const result = await runCli(['job', 'log', 'j_1', '--server', server.url]);
    assert.deepEqual(result, { code: 0, stdout: 'line 1\nline 2\n', stderr: '' });
  });
});
