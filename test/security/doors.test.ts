// Finding 2 of the security review: the anonymous doors (iPXE, nixos, artifacts, Pi TFTP, enroll) must not
// create rows without bound. Each test performs the attack and checks the bound it states.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { sql } from 'kysely';
import { maxRowsPerSession } from '../../packages/server/src/boot/core/timeline.ts';
import { eventually, tftpGet, treeFiles } from '../boot/support.ts';
import { mainPath } from '../cli/cli-process.ts';
import { eachDatabase, enrollBody, type Harness } from '../support/harness.ts';

const randomMac = () => `02:${[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const randomSerial = () => randomBytes(4).toString('hex');

/** A request as it arrives from a peer address, optionally through headers a proxy sets. */
async function from(h: Harness, remoteAddress: string, url: string, options: { headers?: Record<string, string>; body?: unknown } = {}) {
  const response = await h.muster.app.inject({
    method: options.body === undefined ? 'GET' : 'POST',
    url,
    remoteAddress,
    headers: options.body === undefined ? options.headers : { 'content-type': 'application/json', ...options.headers },
    payload: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  return { status: response.statusCode, headers: response.headers, text: response.body };
}

async function rows(h: Harness, table: 'machines' | 'events' | 'boot_requests' | 'boot_sessions'): Promise<number> {
  const { count } = await h.muster.db.kysely.selectFrom(table).select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow();
  return Number(count);
}

async function eventTypes(h: Harness, machineId: string): Promise<string[]> {
  const events = await h.muster.db.kysely.selectFrom('events').select('type').where('machine_id', '=', machineId).orderBy('id').execute();
  return events.map((e) => e.type);
}

/** Spends what a source got back since it was last refused (one a second here); returns the refusal. */
async function spent(h: Harness, source: string) {
  for (let i = 0; i < 200; i++) {
    const reply = await from(h, source, `/ipxe?mac=${randomMac()}`);
    if (reply.status === 429) return reply;
  }
  throw new Error(`${source} was never refused`);
}

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

// Per source: a burst of 100 then 60 a minute; server-wide: 40 new machines a minute.
const floodEnv = {
  MUSTER_BOOT_RATE: '60',
  MUSTER_BOOT_BURST: '100',
  MUSTER_DISCOVERY_RATE: '40',
  MUSTER_TRUST_PROXY: '10.9.9.9',
  MUSTER_TFTP_LISTEN: '127.0.0.1:0',
};

eachDatabase(
  'security: a flood of unseen machines at the anonymous doors',
  (h) => {
    test('3,000 random MACs from one source: at most 100 pass the source limit (+1 a second), at most 40 machines are created', async () => {
      const eventsBefore = await rows(h(), 'events');
      const statuses: number[] = [];
      for (let i = 0; i < 3000; i++) statuses.push((await from(h(), '10.0.0.1', `/ipxe?mac=${randomMac()}`)).status);
      const counts = statusCounts(statuses);
      assert.deepEqual(Object.keys(counts).sort(), ['200', '429', '503']);
      assert.equal(counts[200], 40, 'exactly the discovery budget is created');
      assert.ok(counts[200] + counts[503] <= 100 + 60, `${counts[200] + counts[503]} requests passed the source limit`);
      assert.equal(await rows(h(), 'machines'), 40);
      // One discovered event and one boot request (with its event) per machine, and one throttle event for the minute.
      assert.equal(await rows(h(), 'boot_requests'), 40);
      // The throttle event is written on its own, after the request that found the budget spent.
      await eventually(async () => (await rows(h(), 'events')) > eventsBefore + 40 * 2, 'the throttle event');
      assert.equal(await rows(h(), 'events'), eventsBefore + 40 * 2 + 1);
    });

    test('the source limit answers 429 problem+json with Retry-After, at every boot door', async () => {
      const reply = await spent(h(), '10.0.0.1');
      assert.match(reply.headers['content-type'] as string, /^application\/problem\+json/);
      assert.match(String(reply.headers['retry-after']), /^[1-9]\d*$/);
      const problem = JSON.parse(reply.text);
      assert.deepEqual(
        { code: problem.code, status: problem.status, retry_after: problem.retry_after },
        { code: 'rate_limited', status: 429, retry_after: Number(reply.headers['retry-after']) },
      );
      for (const url of ['/boot.ipxe', '/nixos/machines/ATTACK1.ipxe', `/boot/artifacts/${'0'.repeat(64)}/kernel?m=m_x&s=x`]) {
        // The limit gives one request back each second: should that second tick between the last refusal and this
        // request, it passes once; spent again, it is refused.
        let status = 0;
        for (let attempt = 0; attempt < 3 && status !== 429; attempt++) {
          await spent(h(), '10.0.0.1');
          status = (await from(h(), '10.0.0.1', url)).status;
        }
        assert.equal(status, 429, url);
      }
    });

    test('200 more sources with one new MAC or service tag each (iPXE and nixos doors): the server-wide budget holds (503, no machine), one throttle event', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 200; i++) {
        const url = i % 2 ? `/ipxe?mac=${randomMac()}` : `/nixos/machines/NEW${randomSerial()}.ipxe`;
        const reply = await from(h(), `10.1.${i >> 8}.${i & 255}`, url);
        if (reply.status === 503) assert.match(String(reply.headers['retry-after']), /^[1-9]\d*$/);
        statuses.push(reply.status);
      }
      assert.deepEqual(statusCounts(statuses), { 503: 200 });
      assert.equal(await rows(h(), 'machines'), 40);
      const throttled = await h()
        .muster.db.kysely.selectFrom('events')
        .select('data')
        .where('type', '=', 'boot.discovery_throttled')
        .execute();
      assert.equal(throttled.length, 1);
      assert.deepEqual(Object.keys(JSON.parse(throttled[0].data)).sort(), ['door', 'limit', 'window_started_at']);
    });

    test('a known machine still boots while the budget is spent', async () => {
      const known = (await h().request('GET', '/api/v1/machines?limit=1')).body.items[0];
      const mac = known.identifiers.find((i: { kind: string }) => i.kind === 'mac').value;
      assert.equal((await from(h(), '10.2.0.1', `/ipxe?mac=${mac}`)).status, 200);
    });

    test('the Pi TFTP door creates nothing past the budget: an unseen serial gets an error', async () => {
      const files = await treeFiles(h(), { 'config.txt': 'arm_64bit=1\n' });
      assert.equal((await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files, serial_pattern: '*' } })).status < 300, true);
      const port = (h().muster.tftpAddress as { port: number }).port;
      const serial = randomSerial();
      // A rule would discover it: only the spent budget stands in the way.
      assert.equal((await h().request('GET', `/api/v1/pi/serials/${serial}/files`)).body.tree, 'lab');
      const fetch = await tftpGet(port, `${serial}/config.txt`);
      assert.notEqual(fetch.code, 0);
      assert.equal(await rows(h(), 'machines'), 40);
    });

    test('X-Forwarded-For from an untrusted peer is ignored: a spoofed header does not escape the source limit', async () => {
      await spent(h(), '10.0.0.1');
      const reply = await from(h(), '10.0.0.1', `/ipxe?mac=${randomMac()}`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(reply.status, 429);
    });

    test('X-Forwarded-For from the trusted proxy is believed: its clients have their own limits and are recorded', async () => {
      const known = (await h().request('GET', '/api/v1/machines?limit=1')).body.items[0];
      const mac = known.identifiers.find((i: { kind: string }) => i.kind === 'mac').value;
      // The proxy's own address is not limited by the flood's source; the rightmost untrusted hop is the client.
      const reply = await from(h(), '10.9.9.9', `/ipxe?mac=${mac}&product=via-proxy`, {
        headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.50' },
      });
      assert.equal(reply.status, 200, reply.text);
      const sessions = (await h().request('GET', `/api/v1/machines/${known.id}/boot-sessions`)).body.items;
      assert.deepEqual(
        sessions.map((s: { client: string }) => s.client),
        ['10.0.0.1'],
        'the session keeps the client of its first request',
      );
      const last = await h()
        .muster.db.kysely.selectFrom('events')
        .select('data')
        .where('type', '=', 'boot.request')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow();
      assert.equal(JSON.parse(last.data).client, '203.0.113.50');
    });
  },
  { env: floodEnv },
);

eachDatabase(
  'security: enrollment bounded per source and server-wide',
  (h) => {
    test('40 sources enrolling 25 new machines each (1,000 requests): at most 40 machines, the rest 429 with Retry-After', async () => {
      const statuses: number[] = [];
      for (let round = 0; round < 25; round++) {
        for (let source = 0; source < 40; source++) {
          const reply = await from(h(), `10.3.0.${source + 1}`, '/api/v1/enroll', { body: enrollBody(round * 100 + source) });
          if (reply.status === 429) assert.match(String(reply.headers['retry-after']), /^[1-9]\d*$/);
          statuses.push(reply.status);
        }
      }
      assert.deepEqual(statusCounts(statuses), { 201: 40, 429: 960 });
      assert.equal(await rows(h(), 'machines'), 40);
    });

    test('one source is held at its own limit (50 a minute) even for known machines', async () => {
      // Sent at once, so that no token comes back (one each 1.2 s) while they are counted, however slow the machine.
      const replies = await Promise.all(Array.from({ length: 60 }, () => from(h(), '10.4.0.1', '/api/v1/enroll', { body: enrollBody(0) })));
      assert.deepEqual(statusCounts(replies.map((r) => r.status)), { 200: 50, 429: 10 });
    });

    test('hardware facts over 16 KiB are refused with 413 and nothing is stored', async () => {
      const before = (await h().request('GET', '/api/v1/machines/serial:TAG00001')).body;
      const big = { blob: 'x'.repeat(60 * 1024) };
      const known = await from(h(), '10.5.0.1', '/api/v1/enroll', { body: enrollBody(1, { hardware: big }) });
      assert.equal(known.status, 413);
      assert.equal(JSON.parse(known.text).code, 'payload_too_large');
      assert.deepEqual((await h().request('GET', '/api/v1/machines/serial:TAG00001')).body, before);
      const fresh = await from(h(), '10.5.0.2', '/api/v1/enroll', { body: enrollBody(9999, { hardware: big }) });
      assert.equal(fresh.status, 413);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:TAG09999')).status, 404);
    });

    test('hardware facts nested deeper than 8 levels or with more than 1,000 keys are refused with 400', async () => {
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 10; i++) deep = { d: deep };
      const wide = Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`k${i}`, 1]));
      for (const hardware of [deep, wide]) {
        const reply = await from(h(), '10.5.0.3', '/api/v1/enroll', { body: enrollBody(8888, { hardware }) });
        assert.equal(reply.status, 400, reply.text);
        assert.equal(JSON.parse(reply.text).errors[0].path, '/hardware');
      }
      assert.equal((await h().request('GET', '/api/v1/machines/serial:TAG08888')).status, 404);
    });
  },
  { env: { MUSTER_ENROLL_RATE: '50', MUSTER_DISCOVERY_RATE: '40' } },
);

eachDatabase(
  'security: repeated boot requests are coalesced, rules admit only known prefixes, old rows are pruned',
  (h) => {
    test('one MAC asked 500 times: one machine, one coalesced boot-request row with count 500, two events', async () => {
      const mac = '02:00:00:00:99:01';
      for (let i = 0; i < 500; i++) assert.equal((await from(h(), '10.6.0.1', `/ipxe?mac=${mac}`)).status, 200);
      const machine = (await h().request('GET', `/api/v1/machines/mac:${mac}`)).body;
      const sessions = (await h().request('GET', `/api/v1/machines/${machine.id}/boot-sessions`)).body.items;
      assert.equal(sessions.length, 1);
      const detail = (await h().request('GET', `/api/v1/boot-sessions/${sessions[0].id}`)).body;
      assert.equal(detail.requests, 500);
      assert.deepEqual(
        detail.timeline.map((r: { path: string; status: string; count: number }) => ({ path: r.path, status: r.status, count: r.count })),
        [{ path: `/ipxe?mac=${encodeURIComponent(mac)}`, status: 'ok', count: 500 }],
      );
      assert.deepEqual(await eventTypes(h(), machine.id), ['machine.discovered', 'boot.request']);
    });

    test(`one MAC with 1,100 different query strings: at most ${maxRowsPerSession} rows and as many events`, async () => {
      const mac = '02:00:00:00:99:02';
      for (let i = 0; i < 1100; i++) await from(h(), '10.6.0.2', `/ipxe?mac=${mac}&product=n${i}`);
      const machine = (await h().request('GET', `/api/v1/machines/mac:${mac}`)).body;
      const [session] = (await h().request('GET', `/api/v1/machines/${machine.id}/boot-sessions`)).body.items;
      assert.deepEqual({ requests: session.requests }, { requests: 1100 });
      const stored = await h().muster.db.kysely.selectFrom('boot_requests').select('seq').where('session_id', '=', session.id).execute();
      assert.equal(stored.length, maxRowsPerSession);
      assert.equal((await eventTypes(h(), machine.id)).length, 1 + maxRowsPerSession);
    });

    test('a mac_prefix rule with a catch-all ignore discovers only that OUI; other MACs create nothing', async () => {
      const put = (name: string, body: unknown) => h().request('PUT', `/api/v1/rules/${name}`, { body });
      assert.equal((await put('our-oui', { priority: 10, door: 'ipxe', mac_prefix: 'DC-A6-32', action: 'discover' })).status, 200);
      assert.equal((await put('everything-else', { priority: 1000, door: 'ipxe', action: 'ignore' })).status, 200);
      const before = await rows(h(), 'machines');
      const eventsBefore = await rows(h(), 'events');
      for (let i = 0; i < 50; i++) assert.equal((await from(h(), '10.7.0.1', `/ipxe?mac=${randomMac()}`)).status, 404);
      assert.equal(await rows(h(), 'machines'), before);
      assert.equal(await rows(h(), 'events'), eventsBefore);
      assert.equal((await from(h(), '10.7.0.1', '/ipxe?mac=dc:a6:32:00:00:01')).status, 200);
      assert.equal(await rows(h(), 'machines'), before + 1);
    });

    test('retention prunes boot sessions older than 30 days and device events older than 90; audit events stay', async () => {
      const db = h().muster.db.kysely;
      const machine = (await h().request('GET', '/api/v1/machines/mac:02:00:00:00:99:01')).body;
      const old = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
      await db
        .insertInto('boot_sessions')
        .values({
          id: 'b_old',
          machine_id: machine.id,
          door: 'ipxe',
          client: '10.0.0.1',
          started_at: old(40),
          last_at: old(40),
          requests: 1,
          bytes: 0,
          errors: 0,
        })
        .execute();
      await db
        .insertInto('boot_requests')
        .values({
          session_id: 'b_old',
          seq: 1,
          at: old(40),
          door: 'ipxe',
          path: '/ipxe',
          status: 'ok',
          bytes: 0,
          duration_ms: 1,
          error: null,
          count: 1,
          last_at: old(40),
        })
        .execute();
      await db
        .insertInto('events')
        .values([
          { type: 'boot.request', machine_id: machine.id, actor: 'device', reason: '', data: '{}', created_at: old(100) },
          { type: 'machine.discovered', machine_id: machine.id, actor: 'device', reason: '', data: '{}', created_at: old(100) },
          { type: 'user.created', machine_id: null, actor: 'user:admin', reason: '', data: '{}', created_at: old(100) },
          { type: 'boot.request', machine_id: machine.id, actor: 'device', reason: '', data: '{}', created_at: old(60) },
        ])
        .execute();
      const sessionsBefore = await rows(h(), 'boot_sessions');
      const requestsBefore = await rows(h(), 'boot_requests');
      const eventsBefore = await rows(h(), 'events');
      const report = await h().muster.retention.prune();
      assert.deepEqual(report, { boot_sessions: 1, boot_requests: 1, events: 2 });
      assert.equal(await rows(h(), 'boot_sessions'), sessionsBefore - 1);
      assert.equal(await rows(h(), 'boot_requests'), requestsBefore - 1);
      assert.equal(await rows(h(), 'events'), eventsBefore - 2);
      const kept = await db.selectFrom('events').select('type').where('created_at', '<', old(50)).orderBy('id').execute();
      assert.deepEqual(
        kept.map((e) => e.type),
        ['user.created', 'boot.request'],
      );
      assert.deepEqual(await h().muster.retention.prune(), { boot_sessions: 0, boot_requests: 0, events: 0 });
    });
  },
  { env: { MUSTER_BOOT_BURST: '2000' } },
);

eachDatabase('security: the default limits let a legitimate rack boot', (h) => {
  test('40 machines behind one NAT address booting at once (/boot.ipxe, /ipxe, kernel, initrd, /ipxe again: 200 requests) are all answered', async () => {
    const [kernel, initrd] = await treeFiles(h(), { bzImage: Buffer.alloc(1024, 1), initrd: Buffer.alloc(2048, 2) });
    for (const [name, file] of [
      ['registration/kernel', kernel],
      ['registration/initrd', initrd],
    ] as const) {
      const put = await h().request('PUT', `/api/v1/artifact-names/${encodeURIComponent(name)}`, { body: { sha256: file.sha256 } });
      assert.equal(put.status < 300, true);
    }
    const boot = async (n: number) => {
      const mac = `52:54:00:aa:00:${n.toString(16).padStart(2, '0')}`;
      const statuses = [(await from(h(), '192.0.2.10', '/boot.ipxe')).status];
      const answer = await from(h(), '192.0.2.10', `/ipxe?mac=${mac}`);
      statuses.push(answer.status);
      for (const url of answer.text.match(/http:\/\/\S+\/boot\/artifacts\/\S+/g) ?? []) {
        statuses.push((await from(h(), '192.0.2.10', new URL(url).pathname + new URL(url).search)).status);
      }
      statuses.push((await from(h(), '192.0.2.10', `/ipxe?mac=${mac}`)).status);
      return statuses;
    };
    const all = (await Promise.all(Array.from({ length: 40 }, (_, n) => boot(n)))).flat();
    assert.deepEqual(statusCounts(all), { 200: 200 });
    assert.equal(await rows(h(), 'machines'), 40);
  });
});

eachDatabase(
  'security: refusals of unseen machines are reported within the minute budget',
  (h) => {
    test('100 unseen MACs refused by a rule: 100 answers 403, at most 5 boot.refused events (the budget), no machine', async () => {
      assert.equal((await h().request('PUT', '/api/v1/rules/nobody', { body: { door: 'ipxe', action: 'refuse' } })).status, 200);
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) statuses.push((await from(h(), `10.8.0.${i}`, `/ipxe?mac=${randomMac()}`)).status);
      assert.deepEqual(statusCounts(statuses), { 403: 100 });
      const refused = await h().muster.db.kysely.selectFrom('events').select('id').where('type', '=', 'boot.refused').execute();
      assert.equal(refused.length, 5);
      assert.equal(await rows(h(), 'machines'), 0);
    });
  },
  { env: { MUSTER_DISCOVERY_RATE: '5' } },
);

test('muster serve refuses a bad --trust-proxy entry at start with one line and exit code 2', async () => {
  const child = spawn(process.execPath, [mainPath, 'serve', '--listen', '127.0.0.1:0', '--trust-proxy', '10.0.0.0/8,proxy.example'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MUSTER_DATA_DIR: '/nonexistent/never-created', MUSTER_TFTP_LISTEN: 'off' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
    setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('muster serve did not exit'));
    }, 20_000).unref();
  });
  assert.equal(code, 2);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.equal(
    stderr,
    `muster: --trust-proxy entry "proxy.example" is not an address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8, ::1, loopback)\n`,
  );
});
