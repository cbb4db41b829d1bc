import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eachDatabase, enrollBody, waitForJob } from '../support/harness.ts';

// The curl examples of the Metal Enrollment seed, section "API Usage", in order.
eachDatabase('Metal Enrollment API examples', (h) => {
  let token: string;
  let machineId: string;
  let groupId: string;

  test('login returns token, expires_at and user', async () => {
    const reply = await h().request('POST', '/api/v1/login', {
      token: null,
      body: { username: 'admin', password: 'correct horse battery' },
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(Object.keys(reply.body).sort(), ['expires_at', 'token', 'user']);
    assert.match(reply.body.token, /^eyJ/);
    assert.ok(Date.parse(reply.body.expires_at) > Date.now() + 23 * 3600_000);
    assert.equal(reply.body.user.username, 'admin');
    assert.equal(reply.body.user.role, 'admin');
    assert.equal(reply.body.user.password_hash, undefined);
    token = reply.body.token;
  });

  test('enroll needs no auth and returns the new machine', async () => {
    const reply = await h().request('POST', '/api/v1/enroll', {
      token: null,
      body: { service_tag: 'ABC123', mac_address: '00:11:22:33:44:55', hardware: { cpu: 'Xeon', memory_gb: 64 } },
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.body.service_tag, 'ABC123');
    assert.equal(reply.body.mac_address, '00:11:22:33:44:55');
    assert.equal(reply.body.status, 'enrolled');
    assert.deepEqual(reply.body.hardware, { cpu: 'Xeon', memory_gb: 64 });
    machineId = reply.body.id;
  });

  test('list machines with the bearer token', async () => {
    const reply = await h().request('GET', '/api/v1/machines', { token });
    assert.equal(reply.status, 200);
    assert.deepEqual(
      reply.body.items.map((m: { id: string }) => m.id),
      [machineId],
    );
    assert.equal(reply.body.next_cursor, null);
  });

  test('get machine details by id and by service tag', async () => {
    const byId = await h().request('GET', `/api/v1/machines/${machineId}`, { token });
    const byTag = await h().request('GET', '/api/v1/machines/serial:ABC123', { token });
    assert.equal(byId.status, 200);
    assert.deepEqual(byTag.body, byId.body);
  });

  test('update machine sets hostname and config, and configures it', async () => {
    const reply = await h().request('PUT', `/api/v1/machines/${machineId}`, {
      token,
      body: { hostname: 'server01', nixos_config: '{ ... }' },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.hostname, 'server01');
    assert.equal(reply.body.nixos_config, '{ ... }');
    assert.equal(reply.body.status, 'configured');
  });

  test('trigger build queues a build job and the machine becomes ready', async () => {
    const reply = await h().request('POST', `/api/v1/machines/${machineId}/build`, { token });
    assert.equal(reply.status, 202);
    assert.equal(reply.body.type, 'build');
    assert.equal(reply.body.machine_id, machineId);
    const job = await waitForJob(h, reply.body.id);
    assert.equal(job.state, 'succeeded');
    const machine = await h().request('GET', `/api/v1/machines/${machineId}`, { token });
    assert.equal(machine.body.status, 'ready');
  });

  test('create group with name, description and tags', async () => {
    const reply = await h().request('POST', '/api/v1/groups', {
      token,
      body: { name: 'web-servers', description: 'Production web servers', tags: ['production', 'web'] },
    });
    assert.equal(reply.status, 201);
    assert.deepEqual(
      { name: reply.body.name, description: reply.body.description, tags: reply.body.tags, machine_count: reply.body.machine_count },
      { name: 'web-servers', description: 'Production web servers', tags: ['production', 'web'], machine_count: 0 },
    );
    groupId = reply.body.id;
  });

  test('list groups', async () => {
    const reply = await h().request('GET', '/api/v1/groups', { token });
    assert.equal(reply.status, 200);
    assert.deepEqual(
      reply.body.items.map((g: { id: string }) => g.id),
      [groupId],
    );
  });

  test('add machine to group, twice, keeps one membership', async () => {
    for (let i = 0; i < 2; i++) {
      const reply = await h().request('PUT', `/api/v1/groups/${groupId}/machines/${machineId}`, { token });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.machine_count, 1);
    }
  });

  test('get group machines', async () => {
    const reply = await h().request('GET', `/api/v1/groups/${groupId}/machines`, { token });
    assert.equal(reply.status, 200);
    assert.deepEqual(
      reply.body.items.map((m: { id: string }) => m.id),
      [machineId],
    );
  });

  test('bulk update by group reports each machine', async () => {
    const reply = await h().request('POST', '/api/v1/bulk', {
      token,
      body: { group_id: groupId, operation: 'update', data: { description: 'Updated via bulk operation' } },
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, {
      operation: 'update',
      total: 1,
      succeeded: 1,
      failed: 0,
      results: [{ machine_id: machineId, ok: true }],
    });
    const machine = await h().request('GET', `/api/v1/machines/${machineId}`, { token });
    assert.equal(machine.body.description, 'Updated via bulk operation');
  });

  test('bulk build by ids reports success and failure per machine', async () => {
    const other = await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(1) });
    const reply = await h().request('POST', '/api/v1/bulk', {
      token,
      body: { machine_ids: [machineId, other.body.id, 'm_doesnotexist'], operation: 'build' },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.total, 3);
    assert.equal(reply.body.succeeded, 1);
    assert.deepEqual(
      reply.body.results.map((r: { ok: boolean; code?: string }) => [r.ok, r.code]),
      [
        [true, undefined],
        [false, 'illegal_transition'],
        [false, 'machine_not_found'],
      ],
    );
    assert.match(reply.body.results[0].job_id, /^j_/);
    await waitForJob(h, reply.body.results[0].job_id);
  });

  test('create and list users (admin only)', async () => {
    const created = await h().request('POST', '/api/v1/users', {
      token,
      body: { username: 'operator1', email: 'operator@example.com', password: 'secure-password', role: 'operator' },
    });
    assert.equal(created.status, 201);
    assert.deepEqual(
      { username: created.body.username, email: created.body.email, role: created.body.role },
      { username: 'operator1', email: 'operator@example.com', role: 'operator' },
    );
    const list = await h().request('GET', '/api/v1/users', { token });
    assert.deepEqual(list.body.items.map((u: { username: string }) => u.username).sort(), ['admin', 'operator1']);
  });

  test('change password with PUT /users/{id}; the old one stops working', async () => {
    const me = await h().request('GET', '/api/v1/me', { token });
    const reply = await h().request('PUT', `/api/v1/users/${me.body.id}`, { token, body: { password: 'new-secure-password' } });
    assert.equal(reply.status, 200);
    const oldLogin = await h().request('POST', '/api/v1/login', {
      token: null,
      body: { username: 'admin', password: 'correct horse battery' },
    });
    assert.equal(oldLogin.status, 401);
    const newLogin = await h().request('POST', '/api/v1/login', {
      token: null,
      body: { username: 'admin', password: 'new-secure-password' },
    });
    assert.equal(newLogin.status, 200);
  });
});
