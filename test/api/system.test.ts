import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { eachDatabase, enrollBody, type Harness } from '../support/harness.ts';
import { answered, assertProblem, eventsAfter, lastEventId, publicOperations } from './assertions.ts';

const protectedOperations = [
  'GET /api/v1/me',
  'GET /api/v1/users',
  'POST /api/v1/users',
  'GET /api/v1/users/{id}',
  'PUT /api/v1/users/{id}',
  'DELETE /api/v1/users/{id}',
  'POST /api/v1/tokens',
  'GET /api/v1/tokens',
  'DELETE /api/v1/tokens/{id}',
  'GET /api/v1/machines',
  'POST /api/v1/machines',
  'GET /api/v1/machines/{id}',
  'PUT /api/v1/machines/{id}',
  'PATCH /api/v1/machines/{id}',
  'POST /api/v1/machines/{id}/transition',
  'POST /api/v1/machines/{id}/identifiers',
  'POST /api/v1/machines/{id}/build',
  'GET /api/v1/machines/{id}/events',
  'GET /api/v1/fleets',
  'POST /api/v1/fleets',
  'GET /api/v1/fleets/{id}',
  'GET /api/v1/fleets/{id}/slots',
  'GET /api/v1/fleets/{id}/ip-pool',
  'PUT /api/v1/fleets/{id}/ip-pool',
  'POST /api/v1/fleets/{id}/slots',
  'GET /api/v1/machines/{id}/certificates',
  'POST /api/v1/certificates/{serial}/revoke',
  'GET /api/v1/enrollment-tokens',
  'POST /api/v1/enrollment-tokens',
  'POST /api/v1/enrollment-tokens/{name}/revoke',
  'POST /api/v1/machines/{id}/approve',
  'POST /api/v1/machines/{id}/reject',
  'PUT /api/v1/fleets/{id}',
  'DELETE /api/v1/fleets/{id}',
  'GET /api/v1/groups',
  'POST /api/v1/groups',
  'GET /api/v1/groups/{id}',
  'PUT /api/v1/groups/{id}',
  'DELETE /api/v1/groups/{id}',
  'GET /api/v1/groups/{id}/machines',
  'PUT /api/v1/groups/{id}/machines/{machineId}',
  'DELETE /api/v1/groups/{id}/machines/{machineId}',
  'POST /api/v1/bulk',
  'GET /api/v1/jobs',
  'GET /api/v1/jobs/{id}',
  'GET /api/v1/jobs/{id}/log',
  'POST /api/v1/jobs/{id}/cancel',
  'GET /api/v1/events',
  'GET /api/v1/events/stream',
  'GET /api/v1/artifacts',
  'POST /api/v1/artifacts',
  'GET /api/v1/artifacts/{sha256}',
  'DELETE /api/v1/artifacts/{sha256}',
  'GET /api/v1/artifacts/{sha256}/content',
  'GET /api/v1/artifact-names',
  'GET /api/v1/artifact-names/{name}',
  'PUT /api/v1/artifact-names/{name}',
  'DELETE /api/v1/artifact-names/{name}',
  'GET /api/v1/rules',
  'GET /api/v1/rules/{name}',
  'PUT /api/v1/rules/{name}',
  'DELETE /api/v1/rules/{name}',
  'PUT /api/v1/ca',
  'GET /api/v1/ca/policy',
  'PUT /api/v1/ca/policy',
  'GET /api/v1/schemas/profile',
  'GET /api/v1/profiles',
  'GET /api/v1/profiles/{name}',
  'PUT /api/v1/profiles/{name}',
  'DELETE /api/v1/profiles/{name}',
  'GET /api/v1/profiles/{name}/versions',
  'GET /api/v1/profiles/{name}/versions/{version}',
  'POST /api/v1/profiles/{name}/rollback',
  'POST /api/v1/profiles/{name}/rollout',
  'POST /api/v1/profiles/{name}/assign',
  'GET /api/v1/machines/{id}/explain',
  'POST /api/v1/explain',
  'GET /api/v1/endpoints',
  'GET /api/v1/endpoints/{name}',
  'PUT /api/v1/endpoints/{name}',
  'DELETE /api/v1/endpoints/{name}',
  'POST /api/v1/stage',
  'GET /api/v1/pi/trees',
  'GET /api/v1/pi/trees/{name}',
  'PUT /api/v1/pi/trees/{name}',
  'DELETE /api/v1/pi/trees/{name}',
  'POST /api/v1/pi/provision',
  'GET /api/v1/pi/machines',
  'GET /api/v1/pi/serials/{serial}/files',
  'GET /api/v1/pi/serials/{serial}/files/{*}',
  'GET /api/v1/machines/{id}/boot-sessions',
  'GET /api/v1/boot-sessions/{id}',
  'GET /api/v1/boot/scripts',
  'GET /api/v1/boot/scripts/{name}',
  'PUT /api/v1/boot/scripts/{name}',
  'DELETE /api/v1/boot/scripts/{name}',
];

interface StreamedEvent {
  id: number;
  type: string;
  machine_id: string | null;
}

/** A server-sent event stream read over a real socket. */
async function openStream(h: Harness, headers: Record<string, string> = {}) {
  const { port } = h.muster.app.server.address() as AddressInfo;
  const abort = new AbortController();
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/events/stream`, {
    headers: { authorization: `Bearer ${h.admin}`, ...headers },
    signal: abort.signal,
  });
  assert.equal(response.status, 200);
  assert.match(String(response.headers.get('content-type')), /^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const received: StreamedEvent[] = [];
  const readEvent = async (): Promise<StreamedEvent> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (!data) continue;
        const event = JSON.parse(data) as StreamedEvent;
        const id = /^id: (\d+)$/m.exec(frame)?.[1];
        assert.equal(Number(id), event.id, 'the SSE id is the event id');
        received.push(event);
        return event;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
  return {
    received,
    /** Reads events until one matches, failing instead of waiting for ever. */
    async until(match: (event: StreamedEvent) => boolean): Promise<StreamedEvent> {
      return answered(
        'the event stream',
        (async () => {
          for (;;) {
            const event = await readEvent();
            if (match(event)) return event;
          }
        })(),
      );
    },
    close: () => abort.abort(),
  };
}

eachDatabase('System routes', (h) => {
  test('/healthz and /readyz answer 200 with a status', async () => {
    const health = await h().request('GET', '/healthz', { token: null });
    const ready = await h().request('GET', '/readyz', { token: null });
    assert.deepEqual([health.status, health.body, ready.status, ready.body], [200, { status: 'ok' }, 200, { status: 'ready' }]);
  });

  test('/metrics counts requests, machines by state, enrollments and jobs', async () => {
    for (let n = 1; n <= 3; n++)
      assert.equal((await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n) })).status, 201);
    assert.equal((await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(1) })).status, 200);
    for (const url of ['/metrics', '/api/v1/metrics']) {
      const reply = await h().request('GET', url, { token: null });
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers['content-type']), /^text\/plain/);
      const lines = reply.text.split('\n');
      assert.ok(
        lines.some((l) => /^muster_http_request_duration_seconds_bucket\{.*route="\/api\/v1\/enroll".*\} \d+$/.test(l)),
        'a latency histogram per route',
      );
      for (const line of [
        'muster_machines{state="enrolled"} 3',
        'muster_machines{state="ready"} 0',
        'muster_enrollments_total{result="created"} 3',
        'muster_enrollments_total{result="updated"} 1',
        'muster_jobs{state="queued"} 0',
        'muster_jobs{state="failed"} 0',
      ]) {
        assert.ok(lines.includes(line), `${url} has ${line}`);
      }
    }
  });

  test('/api/v1/openapi.json is OpenAPI 3.1.0 listing every route, with bearer security on the protected ones', async () => {
    const reply = await h().request('GET', '/api/v1/openapi.json', { token: null });
    assert.equal(reply.status, 200);
    const doc = reply.body;
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(doc.components.securitySchemes.bearer, {
      type: 'http',
      scheme: 'bearer',
      description: doc.components.securitySchemes.bearer.description,
    });
    const security: Record<string, unknown> = {};
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { security?: unknown }>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        security[`${method.toUpperCase()} ${path}`] = operation.security ?? doc.security;
      }
    }
    const deviceOperations = ['GET /api/v1/device/self', 'POST /api/v1/device/certificate'];
    assert.deepEqual(Object.keys(security).sort(), [...publicOperations, ...protectedOperations, ...deviceOperations].sort());
    for (const operation of deviceOperations) assert.deepEqual(security[operation], [{ deviceCertificate: [] }], operation);
    for (const operation of publicOperations) assert.deepEqual(security[operation], [], operation);
    for (const operation of protectedOperations) assert.deepEqual(security[operation], [{ bearer: [] }], operation);
  });

  test('/api/docs serves an HTML page whose scripts and styles load', async () => {
    const reply = await h().request('GET', '/api/docs', { token: null });
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^text\/html/);
    assert.match(reply.text, /<html/);
    const assets = [...reply.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.length >= 3, `assets: ${assets}`);
    for (const asset of assets) {
      const url = new URL(asset, 'http://muster.test/api/docs').pathname;
      assert.equal((await h().request('GET', url, { token: null })).status, 200, url);
    }
  });

  test('every response carries x-request-id, and a sane incoming X-Request-Id is echoed', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const replies = [
      await h().request('GET', '/healthz', { token: null }),
      await h().request('GET', '/api/v1/machines'),
      await h().request('GET', '/api/v1/machines', { token: null }),
      await h().request('GET', '/api/v1/machines/m_nope'),
      await h().request('GET', '/api/v1/nope'),
      await h().request('POST', '/api/v1/enroll', { token: null, payload: '{' }),
    ];
    for (const reply of replies) assert.match(String(reply.headers['x-request-id']), uuid);
    const ids = new Set(replies.map((r) => r.headers['x-request-id']));
    assert.equal(ids.size, replies.length, 'each request gets its own id');

    const echoed = await h().request('GET', '/api/v1/machines/m_nope', { headers: { 'x-request-id': 'trace-42.a_b' } });
    assert.equal(echoed.headers['x-request-id'], 'trace-42.a_b');
    assert.equal(echoed.body.request_id, 'trace-42.a_b');
    for (const insane of ['has spaces in it', 'x'.repeat(65), 'semi;colon', '']) {
      const reply = await h().request('GET', '/healthz', { token: null, headers: { 'x-request-id': insane } });
      assert.match(String(reply.headers['x-request-id']), uuid, JSON.stringify(insane));
    }
  });

  test('setup is refused with 403 once an admin exists, whatever the code', async () => {
    for (const code of ['000000', 'x']) {
      const reply = await h().request('POST', '/api/v1/setup', {
        token: null,
        body: { code, username: 'intruder', password: 'long enough password' },
      });
      assertProblem(reply, 'forbidden', '/api/v1/setup');
    }
    const users = await h().request('GET', '/api/v1/users');
    assert.deepEqual(
      users.body.items.map((u: { username: string }) => u.username),
      ['admin'],
    );
  });

  test('the event stream delivers a machine.enrolled event as it happens', async () => {
    const stream = await openStream(h());
    try {
      const enrolled = await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(10) });
      assert.equal(enrolled.status, 201);
      const event = await stream.until((e) => e.type === 'machine.enrolled' && e.machine_id === enrolled.body.id);
      const [stored] = (await h().request('GET', `/api/v1/events?machine=${enrolled.body.id}&type=machine.enrolled`)).body.items;
      assert.deepEqual(event, stored);
    } finally {
      stream.close();
    }
  });

  test('the event stream with Last-Event-ID replays the events after it, in order, then goes on live', async () => {
    const mark = await lastEventId(h());
    const first = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(20) })).body;
    await h().request('PUT', `/api/v1/machines/${first.id}`, { body: { nixos_config: '{ }' } });
    const missed = await eventsAfter(h(), mark);
    assert.ok(missed.length >= 3, `events after the mark: ${missed.map((e) => e.type)}`);
    const stream = await openStream(h(), { 'last-event-id': String(mark) });
    try {
      await stream.until((e) => e.id === missed.at(-1)?.id);
      assert.deepEqual(stream.received, missed);
      const live = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(21) })).body;
      const next = await stream.until((e) => e.machine_id === live.id && e.type === 'machine.enrolled');
      assert.ok(next.id > (missed.at(-1)?.id ?? 0));
      const ids = stream.received.map((e) => e.id);
      assert.deepEqual(
        ids,
        [...new Set(ids)].sort((a, b) => a - b),
        'no event twice, none out of order',
      );
    } finally {
      stream.close();
    }
  });

  // Last in this suite: it leaves logins from this source refused for a minute.
  test('by default the 11th failed login from one source is refused with 429, whichever username it tries', async () => {
    for (let i = 0; i < 10; i++) {
      const reply = await h().request('POST', '/api/v1/login', { token: null, body: { username: `nobody${i}`, password: 'guess' } });
      assertProblem(reply, 'invalid_credentials', '/api/v1/login');
    }
    const eleventh = await h().request('POST', '/api/v1/login', { token: null, body: { username: 'nobody10', password: 'guess' } });
    assertProblem(eleventh, 'rate_limited', '/api/v1/login');
    assert.ok(Number(eleventh.headers['retry-after']) > 0);
  });
});

eachDatabase(
  'Login rate limit',
  (h) => {
    test('after the allowed failures from one source, logins are refused with 429 and retry-after, even the right password', async () => {
      for (let i = 0; i < 3; i++) {
        const reply = await h().request('POST', '/api/v1/login', { token: null, body: { username: 'admin', password: `guess ${i}` } });
        assertProblem(reply, 'invalid_credentials', '/api/v1/login');
      }
      const fourth = await h().request('POST', '/api/v1/login', { token: null, body: { username: 'admin', password: 'guess 3' } });
      assertProblem(fourth, 'rate_limited', '/api/v1/login');
      const retryAfter = Number(fourth.headers['retry-after']);
      assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `retry-after ${fourth.headers['retry-after']}`);
      const right = await h().request('POST', '/api/v1/login', {
        token: null,
        body: { username: 'admin', password: 'correct horse battery' },
      });
      assertProblem(right, 'rate_limited', '/api/v1/login');
      assert.ok(right.headers['retry-after']);
      const other = await h().request('POST', '/api/v1/login', { token: null, body: { username: 'someone', password: 'whatever it is' } });
      assertProblem(other, 'rate_limited', '/api/v1/login');
    });
  },
  { env: { MUSTER_LOGIN_RATE: '3' } },
);
