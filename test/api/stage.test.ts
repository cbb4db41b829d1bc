import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import { runCli } from '../cli/cli-process.ts';
import { type AdminApi, jetsonSpec, startAdminApi } from '../support/admin-api.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { eachDatabase, type Harness, type Reply, testConfig } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

// Seed 002 in muster (docs/stage.md): a Jetson's identity staged into its image. The machine secret is its
// device password, its account is made (or its password set) on the admin API through an admin-defined endpoint,
// and only when that worked are the machine and its secret stored; the answer's device.conf logs in.

/** device.conf's KEY=VALUE lines. */
function parseConf(content: string): Record<string, string> {
  return Object.fromEntries(
    content
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

async function logIn(api: AdminApi, conf: Record<string, string>): Promise<number> {
  const response = await fetch(`${api.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(api.switches.bearer ? { authorization: `Bearer ${api.switches.bearer}` } : {}) },
    body: JSON.stringify({ email: conf.AZAION_DEVICE_EMAIL, password: conf.AZAION_DEVICE_PASSWORD }),
  });
  await response.body?.cancel();
  return response.status;
}

async function put(h: Harness, url: string, body: unknown) {
  const reply = await h.request('PUT', url, { body });
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
}

async function allEvents(
  h: Harness,
): Promise<{ type: string; machine_id: string | null; reason: string; data: Record<string, unknown> }[]> {
  const events = [];
  let after = 0;
  for (;;) {
    const page = await h.request('GET', `/api/v1/events?limit=500&after=${after}`);
    events.push(...page.body.items);
    after = page.body.items.at(-1)?.id ?? after;
    if (!page.body.next_cursor) return events;
  }
}

/** A loopback port nothing listens on: one just given up. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function secretRows(h: Harness): Promise<number> {
  return (await h.muster.db.kysely.selectFrom('machine_secrets').select('machine_id').execute()).length;
}

eachDatabase('muster stage: image-time identity with an account hook (seed 002)', (h) => {
  let api: AdminApi;
  /** Every secret and bearer token the tests saw: none may be in an event. */
  const secrets: string[] = [];
  /** AZJN-0042's password as first staged, and after rotate_secret. */
  const passwords = { first: '', rotated: '' };
  const stage = (body: Record<string, unknown>, token?: string) => h().request('POST', '/api/v1/stage', { body, token });

  before(async () => {
    api = await startAdminApi();
    await put(h(), '/api/v1/endpoints/admin-api', { url: api.url });
    await put(h(), '/api/v1/endpoints/loader', { url: `${api.url}/` });
    await put(h(), '/api/v1/profiles/jetson', { spec: jetsonSpec() });
    await put(h(), '/api/v1/profiles/jetson-fast', { spec: jetsonSpec({ timeout: '1s' }) });
  });
  after(async () => {
    await api?.close();
  });

  /** A first stage of `serial` that must fail: 502 hook_failed, no machine, no secret, a machine.stage_failed event. */
  async function failsLeavingNothing(serial: string, profile = 'jetson') {
    const rows = await secretRows(h());
    const reply = await stage({ serial, profile });
    assertProblem(reply, 'hook_failed', '/api/v1/stage');
    assertProblem(await h().request('GET', `/api/v1/machines/serial:${serial}`), 'machine_not_found');
    assert.equal(await secretRows(h()), rows, 'no secret stored');
    const failed = (await h().request('GET', '/api/v1/events?type=machine.stage_failed&limit=500')).body.items.filter(
      (e: { data: { serial: string } }) => e.data.serial === serial,
    );
    assert.equal(failed.length, 1);
    assert.equal(failed[0].machine_id, null);
    return { reply, event: failed[0] };
  }

  test('stage AZJN-0042 creates the account once and answers a device.conf whose values log in', async () => {
    const reply = await stage({ serial: 'AZJN-0042', profile: 'jetson', verify: true });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.headers['cache-control'], 'no-store');
    const conf = parseConf(reply.body.files[0].content);
    const password = conf.AZAION_DEVICE_PASSWORD;
    secrets.push(password);
    passwords.first = password;
    assert.match(password, /^[0-9a-f]{32}$/);
    const content = `AZAION_DEVICE_EMAIL=azaion-jetson-0042@azaion.com\nAZAION_DEVICE_PASSWORD=${password}\n`;
    assert.deepEqual(reply.body, {
      machine_id: reply.body.machine_id,
      created: true,
      serial: 'AZJN-0042',
      hostname: 'azjn-0042',
      profile: 'jetson',
      profile_version: 1,
      account: 'created',
      secret: 'made',
      files: [{ path: 'etc/azaion/device.conf', mode: '0600', owner: 'root:root', content, sha256: reply.body.files[0].sha256 }],
      checks: [
        { name: 'health', ok: true, status: 200, error: null },
        { name: 'login', ok: true, status: 200, error: null },
      ],
    });
    assert.deepEqual([...api.users], [['azaion-jetson-0042@azaion.com', { password, role: 'CompanionPC' }]]);
    assert.equal(api.count('POST', '/users'), 1);
    assert.equal(await logIn(api, conf), 200);

    const machine = (await h().request('GET', '/api/v1/machines/serial:AZJN-0042')).body;
    assert.deepEqual(
      { id: machine.id, state: machine.state, hostname: machine.hostname, profile: machine.profile, version: machine.profile_version },
      { id: reply.body.machine_id, state: 'enrolled', hostname: 'azjn-0042', profile: 'jetson', version: 1 },
    );
    const stored = await h()
      .muster.db.kysely.selectFrom('machine_secrets')
      .selectAll()
      .where('machine_id', '=', machine.id)
      .executeTakeFirst();
    assert.match(String(stored?.secret), /^sealed:v1:/, 'the secret is stored sealed');
    assert.ok(!String(stored?.secret).includes(password));
  });

  test('running the same stage again PATCHes the stored secret: no second account, and the file still logs in', async () => {
    const first = await h().request('GET', '/api/v1/machines/serial:AZJN-0042');
    const reply = await stage({ serial: 'AZJN-0042', profile: 'jetson' });
    assert.equal(reply.status, 200, reply.text);
    const conf = parseConf(reply.body.files[0].content);
    assert.equal(conf.AZAION_DEVICE_PASSWORD, passwords.first, 'the same secret');
    assert.deepEqual(
      { machine_id: reply.body.machine_id, created: reply.body.created, account: reply.body.account, secret: reply.body.secret },
      { machine_id: first.body.id, created: false, account: 'updated', secret: 'kept' },
    );
    assert.equal(reply.body.checks, undefined, 'checks run only with verify');
    assert.equal(api.users.size, 1);
    assert.deepEqual([api.count('POST', '/users'), api.count('PATCH', '/users/password')], [2, 1]);
    assert.equal(await logIn(api, conf), 200);
    const staged = (await h().request('GET', '/api/v1/events?type=machine.staged')).body.items;
    assert.deepEqual(
      staged.map((e: { data: Record<string, unknown>; actor: string }) => [e.actor, e.data.serial, e.data.account, e.data.secret]),
      [
        ['user:admin', 'AZJN-0042', 'created', 'made'],
        ['user:admin', 'AZJN-0042', 'updated', 'kept'],
      ],
    );
  });

  test('two stages of one new serial at once make one machine, one account and one secret', async () => {
    const [a, b] = await Promise.all([
      stage({ serial: 'AZJN-0800', profile: 'jetson' }),
      stage({ serial: 'AZJN-0800', profile: 'jetson' }),
    ]);
    assert.deepEqual([a.status, b.status], [200, 200], `${a.text} ${b.text}`);
    assert.deepEqual([a.body.created, b.body.created].sort(), [false, true]);
    assert.equal(a.body.machine_id, b.body.machine_id);
    assert.equal(a.body.files[0].content, b.body.files[0].content);
    const password = parseConf(a.body.files[0].content).AZAION_DEVICE_PASSWORD;
    secrets.push(password);
    assert.equal(api.users.get('azaion-jetson-0800@azaion.com')?.password, password);
  });

  test('the profile it has is used when none is given; a serial with neither is refused; an unknown profile is 404', async () => {
    const again = await stage({ serial: 'AZJN-0042' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.profile, 'jetson');
    assert.deepEqual(assertProblem(await stage({ serial: 'AZJN-0999' }), 'bad_request'), ['/profile']);
    assertProblem(await stage({ serial: 'AZJN-0999', profile: 'nope' }), 'not_found');
    assertProblem(await h().request('GET', '/api/v1/machines/serial:AZJN-0999'), 'machine_not_found');
  });

  test('rotate_secret sets a new password on the account; the old one no longer logs in', async () => {
    const reply = await stage({ serial: 'AZJN-0042', rotate_secret: true, verify: true });
    assert.equal(reply.status, 200, reply.text);
    const conf = parseConf(reply.body.files[0].content);
    secrets.push(conf.AZAION_DEVICE_PASSWORD);
    passwords.rotated = conf.AZAION_DEVICE_PASSWORD;
    assert.notEqual(conf.AZAION_DEVICE_PASSWORD, passwords.first);
    assert.deepEqual([reply.body.account, reply.body.secret], ['updated', 'rotated']);
    assert.deepEqual(
      reply.body.checks.map((c: { ok: boolean }) => c.ok),
      [true, true],
    );
    assert.equal(await logIn(api, { ...conf, AZAION_DEVICE_PASSWORD: passwords.first }), 401);
  });

  test('POST /users answering 500 stages nothing: no machine, no secret, a stage_failed event', async () => {
    api.switches.createStatus = 500;
    try {
      const { reply, event } = await failsLeavingNothing('AZJN-0100');
      assert.match(reply.body.detail, /POST \/users on admin-api: answered 500/);
      assert.deepEqual(event.data, { serial: 'AZJN-0100', profile: 'jetson', version: 1, step: 'create', status: 500 });
    } finally {
      api.reset();
    }
  });

  test('a hook that does not answer within the profile timeout stages nothing', async () => {
    api.switches.createHangs = true;
    try {
      const started = Date.now();
      const { reply, event } = await failsLeavingNothing('AZJN-0101', 'jetson-fast');
      assert.match(reply.body.detail, /no answer within 1s/);
      assert.ok(Date.now() - started < 9000, 'the profile timeout applies, not the default');
      assert.equal(event.data.status, null);
    } finally {
      api.reset();
    }
  });

  test('409 then a failing PATCH stages nothing, and the account keeps its password', async () => {
    api.users.set('azaion-jetson-0102@azaion.com', { password: 'set-by-hand', role: 'CompanionPC' });
    api.switches.updateStatus = 500;
    try {
      const { reply, event } = await failsLeavingNothing('AZJN-0102');
      assert.match(reply.body.detail, /answered 409 \(the account exists\), then PATCH \/users\/password: answered 500/);
      assert.deepEqual([event.data.step, event.data.status], ['update', 500]);
      assert.equal(api.users.get('azaion-jetson-0102@azaion.com')?.password, 'set-by-hand');
    } finally {
      api.reset();
    }
  });

  test('a refused connection stages nothing', async () => {
    await put(h(), '/api/v1/endpoints/nowhere', { url: `http://127.0.0.1:${await closedPort()}` });
    await put(h(), '/api/v1/profiles/jetson-nowhere', { spec: jetsonSpec({ endpoint: 'nowhere' }) });
    const { reply } = await failsLeavingNothing('AZJN-0103', 'jetson-nowhere');
    assert.match(reply.body.detail, /connection refused/);
  });

  test('a hook path that would leave its endpoint is not sent', async () => {
    await put(h(), '/api/v1/profiles/jetson-escape', { spec: jetsonSpec({ createPath: '@127.0.0.1:1/users' }) });
    const before = api.requests.length;
    const { reply } = await failsLeavingNothing('AZJN-0104', 'jetson-escape');
    assert.match(reply.body.detail, /the path leaves endpoint admin-api/);
    assert.equal(api.requests.length, before, 'nothing was sent');
  });

  test('a failed re-stage with rotate_secret keeps the stored secret, and the next stage uses it again', async () => {
    api.switches.createStatus = 503;
    try {
      assertProblem(await stage({ serial: 'AZJN-0042', rotate_secret: true }), 'hook_failed');
    } finally {
      api.reset();
    }
    const failed = (await h().request('GET', '/api/v1/events?type=machine.stage_failed&limit=500')).body.items.at(-1);
    assert.equal(failed.machine_id, (await h().request('GET', '/api/v1/machines/serial:AZJN-0042')).body.id);
    const reply = await stage({ serial: 'AZJN-0042' });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(parseConf(reply.body.files[0].content).AZAION_DEVICE_PASSWORD, passwords.rotated);
    assert.equal(reply.body.secret, 'kept');
  });

  test("an endpoint's bearer token is sent, sealed at rest and never shown; a wrong one fails the stage", async () => {
    api.switches.bearer = 'admin-token-right';
    secrets.push('admin-token-right', 'admin-token-wrong');
    try {
      const set = await put(h(), '/api/v1/endpoints/admin-api', { url: api.url, bearer: 'admin-token-right' });
      assert.deepEqual(set, {
        name: 'admin-api',
        url: api.url,
        has_credential: true,
        created_at: set.created_at,
        updated_at: set.updated_at,
      });
      const from = api.requests.length;
      const reply = await stage({ serial: 'AZJN-0200', profile: 'jetson' });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(
        api.requests.slice(from).map((r) => [r.method, r.path, r.authorization]),
        [['POST', '/users', 'Bearer admin-token-right']],
      );
      secrets.push(parseConf(reply.body.files[0].content).AZAION_DEVICE_PASSWORD);
      const stored = await h().muster.db.kysely.selectFrom('endpoints').selectAll().where('name', '=', 'admin-api').executeTakeFirst();
      assert.match(String(stored?.credential), /^sealed:v1:/);

      await put(h(), '/api/v1/endpoints/admin-api', { url: api.url, bearer: 'admin-token-wrong' });
      const { event } = await failsLeavingNothing('AZJN-0201');
      assert.equal(event.data.status, 401);

      const listed = await h().request('GET', '/api/v1/endpoints', { token: await h().userToken('viewer') });
      assert.equal(listed.status, 200);
      assert.deepEqual(
        listed.body.items.map((e: { name: string; has_credential: boolean }) => [e.name, e.has_credential]),
        [
          ['admin-api', true],
          ['loader', false],
          ['nowhere', false],
        ],
      );
      const one = await h().request('GET', '/api/v1/endpoints/admin-api');
      for (const text of [listed.text, one.text]) assert.ok(!text.includes('admin-token'), 'no bearer token is shown');
    } finally {
      api.reset();
      await put(h(), '/api/v1/endpoints/admin-api', { url: api.url });
    }
  });

  test('only an admin sets or deletes endpoints; a viewer may not stage', async () => {
    const operator = await h().userToken('operator');
    const viewer = await h().userToken('viewer');
    assertProblem(
      await h().request('PUT', '/api/v1/endpoints/mine', { token: operator, body: { url: 'http://127.0.0.1:9' } }),
      'forbidden',
    );
    assertProblem(await h().request('DELETE', '/api/v1/endpoints/nowhere', { token: operator }), 'forbidden');
    assertProblem(await stage({ serial: 'AZJN-0300', profile: 'jetson' }, viewer), 'forbidden');
    const staged = await stage({ serial: 'AZJN-0300', profile: 'jetson' }, operator);
    assert.equal(staged.status, 200, staged.text);
    secrets.push(parseConf(staged.body.files[0].content).AZAION_DEVICE_PASSWORD);
  });

  test('endpoint URLs are http or https without user, password, query or fragment, at most 2048 characters', async () => {
    for (const url of [
      'ftp://127.0.0.1/',
      'http://user:pass@127.0.0.1/',
      'http://127.0.0.1/?key=1',
      'http://127.0.0.1/#x',
      `http://127.0.0.1/${'a'.repeat(2048)}`,
      'http://',
    ]) {
      assertProblem(await h().request('PUT', '/api/v1/endpoints/bad', { body: { url } }), 'validation_failed');
    }
    assertProblem(await h().request('GET', '/api/v1/endpoints/bad'), 'not_found');
  });

  test('an endpoint a current profile version calls cannot be deleted; an unused one can', async () => {
    const refused = await h().request('DELETE', '/api/v1/endpoints/nowhere');
    assertProblem(refused, 'conflict');
    assert.match(refused.body.detail, /jetson-nowhere/);
    await put(h(), '/api/v1/profiles/jetson-nowhere', { spec: jetsonSpec() });
    assert.equal((await h().request('DELETE', '/api/v1/endpoints/nowhere')).status, 204);
    assertProblem(await h().request('GET', '/api/v1/endpoints/nowhere'), 'not_found');
    const events = (await h().request('GET', '/api/v1/events?type=endpoint.')).body.items;
    assert.deepEqual(events.at(-1).data, { endpoint: 'nowhere' });
    assert.equal(events.at(-1).type, 'endpoint.deleted');
  });

  test('no event holds a machine secret or a bearer token', async () => {
    assert.ok(secrets.length >= 6);
    const text = JSON.stringify(await allEvents(h()));
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret is in the event log');
    assert.match(text, /machine\.stage_failed/);
  });
});

for (const kind of databaseKinds) {
  describe(`master-key rotate re-seals endpoint credentials and machine secrets [${kind}]`, () => {
    let database: TestDatabase;
    let api: AdminApi;
    let muster: Muster | undefined;

    before(async () => {
      database = await createTestDatabase(kind);
      api = await startAdminApi();
      api.switches.bearer = 'rotation-token';
    });
    after(async () => {
      await muster?.close();
      await api?.close();
      await database?.drop();
    });

    async function start(): Promise<(method: string, url: string, body?: unknown) => Promise<Pick<Reply, 'status' | 'body'>>> {
      muster = await createMuster(testConfig(database));
      const server = muster;
      await server.users.create('test', { username: 'keeper', password: 'a long enough password', role: 'admin' }).catch(() => {});
      const login = await server.app.inject({
        method: 'POST',
        url: '/api/v1/login',
        payload: { username: 'keeper', password: 'a long enough password' },
      });
      const token = login.json().token;
      return async (method, url, body) => {
        const reply = await server.app.inject({
          method: method as 'GET',
          url,
          payload: body as object,
          headers: { authorization: `Bearer ${token}` },
        });
        return { status: reply.statusCode, body: reply.json() };
      };
    }

    test('after a rotation the server opens the bearer token and the stored secret: a re-stage PATCHes the same one', async () => {
      let call = await start();
      assert.equal((await call('PUT', '/api/v1/endpoints/admin-api', { url: api.url, bearer: 'rotation-token' })).status, 200);
      const spec = { ...jetsonSpec(), checks: [] };
      assert.equal((await call('PUT', '/api/v1/profiles/jetson', { spec })).status, 200);
      const first = await call('POST', '/api/v1/stage', { serial: 'AZJN-0042', profile: 'jetson' });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      await muster?.close();
      muster = undefined;

      const flags = ['--data-dir', database.dataDir, ...(database.databaseUrl ? ['--database-url', database.databaseUrl] : [])];
      const rotated = await runCli(['--json', 'master-key', 'rotate', ...flags]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const names = JSON.parse(rotated.stdout).resealed.map((r: { name: string }) => r.name);
      assert.ok(names.includes('endpoint:admin-api'), names.join(' '));
      assert.ok(names.includes(`machine_secret:${first.body.machine_id}`), names.join(' '));
      const shown = JSON.parse((await runCli(['--json', 'master-key', 'show', ...flags])).stdout);
      assert.equal(new Set(shown.secrets.map((s: { key: string }) => s.key)).size, 1, 'every secret is under the new key');

      call = await start();
      const again = await call('POST', '/api/v1/stage', { serial: 'AZJN-0042' });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual([again.body.account, again.body.secret], ['updated', 'kept']);
      assert.equal(again.body.files[0].content, first.body.files[0].content);
      assert.deepEqual(
        api.requests.map((r) => r.authorization),
        ['Bearer rotation-token', 'Bearer rotation-token', 'Bearer rotation-token'],
      );
    });
  });
}
