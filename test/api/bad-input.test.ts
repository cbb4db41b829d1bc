import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { allowedTransitions, errorCodes, problemTypeBase } from '@muster/contract';
import { SignJWT } from 'jose';
import { eachDatabase, enrollBody, type Reply } from '../support/harness.ts';
import { assertProblem, eventsAfter, refusedWithoutChange, stateOf } from './assertions.ts';

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

eachDatabase('Bad input is refused with problem+json and changes nothing', (h) => {
  let first: Reply['body'];
  let second: Reply['body'];
  let adminId: string;

  before(async () => {
    first = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(1) })).body;
    second = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(2) })).body;
    adminId = (await h().request('GET', '/api/v1/me')).body.id;
  });

  test('a malformed JSON body is a 400 bad_request', async () => {
    const enroll = await refusedWithoutChange(h(), () =>
      h().request('POST', '/api/v1/enroll', { token: null, payload: '{"service_tag":' }),
    );
    assertProblem(enroll, 'bad_request', '/api/v1/enroll');
    const update = await refusedWithoutChange(h(), () => h().request('PUT', `/api/v1/machines/${first.id}`, { payload: '{"hostname":' }));
    assertProblem(update, 'bad_request', `/api/v1/machines/${first.id}`);
  });

  test('a hostname of the wrong type is a 400 naming /hostname', async () => {
    const reply = await refusedWithoutChange(h(), () => h().request('PUT', `/api/v1/machines/${first.id}`, { body: { hostname: 123 } }));
    const paths = assertProblem(reply, 'validation_failed', `/api/v1/machines/${first.id}`);
    assert.deepEqual([...new Set(paths)], ['/hostname']);
  });

  test('limit=abc on a list is a 400 naming /limit', async () => {
    const reply = await h().request('GET', '/api/v1/machines?limit=abc');
    assert.deepEqual(assertProblem(reply, 'validation_failed', '/api/v1/machines'), ['/limit']);
  });

  test('an unknown field in an enrollment is a 400 naming it, and enrolls nothing', async () => {
    const reply = await refusedWithoutChange(h(), () =>
      h().request('POST', '/api/v1/enroll', { token: null, body: { service_tag: 'X1', bogus: 1 } }),
    );
    assertProblem(reply, 'validation_failed', '/api/v1/enroll');
    assert.deepEqual(reply.body.errors, [{ path: '/bogus', message: 'unknown field' }]);
    assertProblem(await h().request('GET', '/api/v1/machines/serial:X1'), 'machine_not_found');
  });

  test('an enrollment over 128 KiB is a 413 payload_too_large', async () => {
    const body = { service_tag: 'BIG1', hardware: { blob: 'x'.repeat(130 * 1024) } };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/enroll', { token: null, body }));
    assertProblem(reply, 'payload_too_large', '/api/v1/enroll');
  });

  test('a machine update over 1 MiB is a 413 payload_too_large', async () => {
    const body = { description: 'x'.repeat(1024 * 1024 + 1) };
    const reply = await refusedWithoutChange(h(), () => h().request('PUT', `/api/v1/machines/${first.id}`, { body }));
    assertProblem(reply, 'payload_too_large', `/api/v1/machines/${first.id}`);
  });

  for (const ref of ['m_nope', 'serial:NOPE']) {
    test(`an unknown machine ${ref} is a 404 machine_not_found for get, update and transition`, async () => {
      const url = `/api/v1/machines/${ref}`;
      assertProblem(await h().request('GET', url), 'machine_not_found', url);
      const update = await refusedWithoutChange(h(), () => h().request('PUT', url, { body: { description: 'x' } }));
      assertProblem(update, 'machine_not_found', url);
      const transition = await refusedWithoutChange(h(), () => h().request('POST', `${url}/transition`, { body: { to: 'configured' } }));
      assertProblem(transition, 'machine_not_found', `${url}/transition`);
    });
  }

  test('enrolled → provisioned is a 409 illegal_transition listing the allowed states', async () => {
    const url = `/api/v1/machines/${first.id}/transition`;
    const reply = await refusedWithoutChange(h(), () => h().request('POST', url, { body: { to: 'provisioned', reason: 'skip ahead' } }));
    assertProblem(reply, 'illegal_transition', url);
    assert.deepEqual(
      { from: reply.body.from, to: reply.body.to, allowed: reply.body.allowed, errors: reply.body.errors },
      { from: 'enrolled', to: 'provisioned', allowed: ['configured', 'retired'], errors: [] },
    );
    assert.deepEqual(reply.body.allowed, allowedTransitions('enrolled'));
    assert.match(reply.body.detail, /configured, retired/);
  });

  test("adding another machine's MAC to a machine is a 409 identifier_conflict", async () => {
    const url = `/api/v1/machines/${first.id}/identifiers`;
    const reply = await refusedWithoutChange(h(), () => h().request('POST', url, { body: { kind: 'mac', value: second.mac_address } }));
    assertProblem(reply, 'identifier_conflict', url);
  });

  test('registering a machine with an existing serial is a 409 identifier_conflict', async () => {
    const body = { identifiers: [{ kind: 'serial', value: first.service_tag }], hostname: 'copy' };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/machines', { body }));
    assertProblem(reply, 'identifier_conflict', '/api/v1/machines');
  });

  test('an enrollment naming identifiers of two machines is a 409 and a conflict event on each, merging nothing', async () => {
    const before = await stateOf(h());
    const body = { service_tag: first.service_tag, mac_address: second.mac_address, hardware: { merged: true } };
    const reply = await h().request('POST', '/api/v1/enroll', { token: null, body });
    assertProblem(reply, 'identifier_conflict', '/api/v1/enroll');
    const after = await stateOf(h());
    assert.deepEqual({ ...after, lastEventId: 0 }, { ...before, lastEventId: 0 });
    const events = await eventsAfter(h(), before.lastEventId);
    assert.deepEqual(
      events.map((e) => [e.type, e.machine_id]).sort(),
      [
        ['machine.identifier_conflict', first.id],
        ['machine.identifier_conflict', second.id],
      ].sort(),
    );
  });

  test('an enrollment with only firmware-default identifiers is a 400 no_usable_identifier', async () => {
    const body = { service_tag: 'To Be Filled By O.E.M.', mac_address: '00:00:00:00:00:00' };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/enroll', { token: null, body }));
    const paths = assertProblem(reply, 'no_usable_identifier', '/api/v1/enroll');
    assert.ok(paths.includes('/service_tag'), `paths ${paths}`);
  });

  test('an enrollment with a malformed MAC is a 400 invalid_identifier naming /mac_address', async () => {
    const body = { service_tag: 'GOOD-1', mac_address: '00:11:22:33:44:zz' };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/enroll', { token: null, body }));
    assert.deepEqual(assertProblem(reply, 'invalid_identifier', '/api/v1/enroll'), ['/mac_address']);
  });

  test('a JWT signed with another secret is a 401 invalid_token', async () => {
    const forged = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(adminId)
      .setIssuer('muster')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not the server secret at all, not even close'));
    const reply = await refusedWithoutChange(h(), () =>
      h().request('PUT', `/api/v1/machines/${first.id}`, { token: forged, body: { description: 'forged' } }),
    );
    assertProblem(reply, 'invalid_token', `/api/v1/machines/${first.id}`);
  });

  test('a session token with one character of its signature changed is a 401 invalid_token', async () => {
    const [header, payload, signature] = h().admin.split('.');
    // A character in the middle: the last one may carry only padding bits and decode to the same bytes.
    const at = Math.floor(signature.length / 2);
    const flipped = `${signature.slice(0, at)}${signature[at] === 'A' ? 'B' : 'A'}${signature.slice(at + 1)}`;
    const reply = await refusedWithoutChange(h(), () =>
      h().request('PUT', `/api/v1/machines/${first.id}`, { token: `${header}.${payload}.${flipped}`, body: { description: 'x' } }),
    );
    assertProblem(reply, 'invalid_token');
    assert.equal((await h().request('GET', '/api/v1/me')).status, 200, 'the real token still works');
  });

  test('an unsigned (alg: none) token is a 401 invalid_token', async () => {
    const seconds = Math.floor(Date.now() / 1000);
    const claims = { role: 'admin', sub: adminId, iss: 'muster', iat: seconds, exp: seconds + 3600 };
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
    const reply = await refusedWithoutChange(h(), () =>
      h().request('PUT', `/api/v1/machines/${first.id}`, { token: unsigned, body: { description: 'x' } }),
    );
    assertProblem(reply, 'invalid_token');
  });

  test('a revoked API token is a 401 invalid_token', async () => {
    const created = await h().request('POST', '/api/v1/tokens', { body: { name: 'soon-revoked' } });
    assert.equal(created.status, 201);
    assert.equal((await h().request('GET', '/api/v1/machines', { token: created.body.token })).status, 200);
    const revoked = await h().request('DELETE', `/api/v1/tokens/${created.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_at);
    const reply = await refusedWithoutChange(h(), () =>
      h().request('PUT', `/api/v1/machines/${first.id}`, { token: created.body.token, body: { description: 'x' } }),
    );
    assertProblem(reply, 'invalid_token');
    assertProblem(await h().request('GET', '/api/v1/machines', { token: created.body.token }), 'invalid_token');
  });

  test('an Authorization header that is not Bearer is a 401', async () => {
    const basic = `Basic ${Buffer.from('admin:correct horse battery').toString('base64')}`;
    const reply = await refusedWithoutChange(h(), () =>
      h().request('PUT', `/api/v1/machines/${first.id}`, { token: null, headers: { authorization: basic }, body: { description: 'x' } }),
    );
    assertProblem(reply, 'unauthenticated');
  });

  test('an unknown route is a 404 problem', async () => {
    assertProblem(await h().request('GET', '/api/v1/nope'), 'not_found', '/api/v1/nope');
    const post = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/machines/m_x/explode', { body: {} }));
    assertProblem(post, 'not_found', '/api/v1/machines/m_x/explode');
  });

  test('a cursor no list returned is a 400 naming /cursor', async () => {
    for (const url of ['/api/v1/machines', '/api/v1/events', '/api/v1/jobs', '/api/v1/groups', '/api/v1/users']) {
      const reply = await h().request('GET', `${url}?cursor=not-a-cursor`);
      assert.deepEqual(assertProblem(reply, 'validation_failed', url), ['/cursor'], url);
    }
  });

  for (const [kind, url, body] of [
    ['group', '/api/v1/groups', { name: 'dup' }],
    ['fleet', '/api/v1/fleets', { name: 'dup' }],
    ['user', '/api/v1/users', { username: 'dup', password: 'long enough', role: 'viewer' }],
  ] as const) {
    test(`a second ${kind} with the same name is a 409 already_exists`, async () => {
      assert.equal((await h().request('POST', url, { body })).status, 201);
      const reply = await refusedWithoutChange(h(), () => h().request('POST', url, { body }));
      assertProblem(reply, 'already_exists', url);
    });
  }

  test('bulk with both machine_ids and group_id is a 400 naming the fields', async () => {
    const group = await h().request('POST', '/api/v1/groups', { body: { name: 'bulk-both' } });
    const body = { machine_ids: [first.id], group_id: group.body.id, operation: 'update', data: { description: 'both' } };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/bulk', { body }));
    const paths = assertProblem(reply, 'validation_failed', '/api/v1/bulk');
    assert.ok(
      paths.length > 0 && paths.every((p) => p === '/machine_ids' || p === '/group_id'),
      `errors should name /machine_ids or /group_id, got ${JSON.stringify(reply.body.errors)}`,
    );
  });

  test('bulk transition without data.to is a 400 naming /data/to', async () => {
    const body = { machine_ids: [first.id], operation: 'transition', data: { reason: 'where to?' } };
    const reply = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/bulk', { body }));
    assert.deepEqual(assertProblem(reply, 'validation_failed', '/api/v1/bulk'), ['/data/to']);
  });

  test('an Idempotency-Key replays the first answer for the same body and is a 422 for another', async () => {
    const headers = { 'idempotency-key': 'configure-second-once' };
    const body = { machine_ids: [second.id], operation: 'transition', data: { to: 'configured', reason: 'idempotent' } };
    const firstReply = await h().request('POST', '/api/v1/bulk', { headers, body });
    assert.equal(firstReply.status, 200);
    assert.deepEqual(firstReply.body, {
      operation: 'transition',
      total: 1,
      succeeded: 1,
      failed: 0,
      results: [{ machine_id: second.id, ok: true }],
    });
    // Run again, the transition would be illegal (configured → configured): an equal answer proves it did not run.
    const before = await stateOf(h());
    const replay = await h().request('POST', '/api/v1/bulk', { headers, body });
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.body, firstReply.body);
    assert.deepEqual(await stateOf(h()), before);
    const other = { ...body, data: { to: 'retired', reason: 'another request' } };
    const mismatch = await refusedWithoutChange(h(), () => h().request('POST', '/api/v1/bulk', { headers, body: other }));
    assertProblem(mismatch, 'idempotency_mismatch', '/api/v1/bulk');
    assert.equal((await h().request('GET', `/api/v1/machines/${second.id}`)).body.state, 'configured');
  });

  test('every problem names its type after its code', async () => {
    const reply = await h().request('GET', '/api/v1/machines/m_nope');
    assert.deepEqual(Object.keys(reply.body).sort(), ['code', 'detail', 'errors', 'instance', 'request_id', 'status', 'title', 'type']);
    assert.equal(reply.body.type, `${problemTypeBase}machine_not_found`);
    assert.equal(reply.body.title, errorCodes.machine_not_found.title);
  });
});

eachDatabase(
  'Expired session tokens',
  (h) => {
    test('a session token past its expiry is a 401 invalid_token', async () => {
      const login = await h().request('POST', '/api/v1/login', {
        token: null,
        body: { username: 'admin', password: 'correct horse battery' },
      });
      assert.equal(login.status, 200);
      assert.equal((await h().request('GET', '/api/v1/me', { token: login.body.token })).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const reply = await h().request('POST', '/api/v1/fleets', { token: login.body.token, body: { name: 'late' } });
      assertProblem(reply, 'invalid_token', '/api/v1/fleets');
      assert.match(reply.body.detail, /expired/);
      const fresh = await h().request('POST', '/api/v1/login', {
        token: null,
        body: { username: 'admin', password: 'correct horse battery' },
      });
      assertProblem(await h().request('GET', '/api/v1/fleets/late', { token: fresh.body.token }), 'not_found');
    });
  },
  { env: { JWT_EXPIRY: '1s' } },
);
