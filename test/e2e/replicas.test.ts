import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import { createTestDatabase, pgUrl, type TestDatabase } from '../support/databases.ts';
import { enrollBody, json, testConfig } from '../support/harness.ts';

/** Reads server-sent events from a stream until `count` data messages arrived. */
async function readEvents(url: string, token: string, count: number, signal: AbortSignal): Promise<{ type: string; machine_id: string }[]> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
  assert.equal(response.status, 200);
  const events: { type: string; machine_id: string }[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = message.split('\n').find((line) => line.startsWith('data: '));
      if (data) events.push(JSON.parse(data.slice(6)));
      if (events.length >= count) return events;
      end = buffer.indexOf('\n\n');
    }
  }
  return events;
}

const baseUrl = (m: Muster) => `http://127.0.0.1:${(m.app.server.address() as AddressInfo).port}`;

// Two stateless replicas on one PostgreSQL, as DESIGN.md's scale-out describes. PostgreSQL only by nature.
const onPostgres = pgUrl ? describe : () => {};
onPostgres('two replicas on one PostgreSQL', () => {
  let database: TestDatabase;
  let one: Muster;
  let two: Muster;
  let token: string;

  before(async () => {
    database = await createTestDatabase('postgres');
    [one, two] = await Promise.all([createMuster(testConfig(database)), createMuster(testConfig(database))]);
    await Promise.all([one.listen(), two.listen()]);
    await one.users.create('test', { username: 'admin', role: 'admin', password: 'correct horse battery' });
    token = (await one.auth.login('admin', 'correct horse battery')).token;
  });

  after(async () => {
    await one?.close();
    await two?.close();
    await database?.drop();
  });

  test('an event made on one replica reaches the stream of the other', async () => {
    const controller = new AbortController();
    const received = readEvents(`${baseUrl(two)}/api/v1/events/stream?type=machine.enrolled`, token, 1, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const enrolled = await fetch(`${baseUrl(one)}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(enrollBody(1)),
    });
    const machine = await json(enrolled);
    const [event] = await received;
    controller.abort();
    assert.deepEqual({ type: event.type, machine_id: event.machine_id }, { type: 'machine.enrolled', machine_id: machine.id });
  });

  test('the same machine enrolled on both replicas at once becomes one machine', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${baseUrl(i % 2 ? one : two)}/api/v1/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(enrollBody(42)),
        }).then(async (r) => ({ status: r.status, id: (await json(r)).id })),
      ),
    );
    assert.deepEqual([...new Set(replies.map((r) => r.status))].sort(), [200, 201]);
    assert.equal(replies.filter((r) => r.status === 201).length, 1);
    assert.equal(new Set(replies.map((r) => r.id)).size, 1);
  });

  test('fleet numbers allocated on both replicas at once are unique', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    await fetch(`${baseUrl(one)}/api/v1/fleets`, { method: 'POST', headers, body: JSON.stringify({ name: 'edge' }) });
    const ids: string[] = [];
    for (let i = 100; i < 130; i++) {
      const reply = await fetch(`${baseUrl(one)}/api/v1/enroll`, { method: 'POST', headers, body: JSON.stringify(enrollBody(i)) });
      ids.push((await json(reply)).id);
    }
    const joined = await Promise.all(
      ids.map((id, i) =>
        fetch(`${baseUrl(i % 2 ? one : two)}/api/v1/machines/${id}`, {
          method: 'PUT',
          headers,
          body: JSON.stringify({ fleet: 'edge' }),
        }).then(json),
      ),
    );
    const numbers = joined.map((m) => m.fleet_seq as number).sort((a, b) => a - b);
    assert.deepEqual(
      numbers,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  });

  test('build jobs queued on one replica run exactly once across both', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const jobIds: string[] = [];
    for (let i = 200; i < 210; i++) {
      const machine = await json(
        await fetch(`${baseUrl(one)}/api/v1/enroll`, { method: 'POST', headers, body: JSON.stringify(enrollBody(i)) }),
      );
      await fetch(`${baseUrl(one)}/api/v1/machines/${machine.id}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ nixos_config: '{ }' }),
      });
      const reply = await fetch(`${baseUrl(i % 2 ? one : two)}/api/v1/machines/${machine.id}/build`, { method: 'POST', headers });
      assert.equal(reply.status, 202);
      jobIds.push((await json(reply)).id);
    }
    for (const id of jobIds) {
      for (let tries = 0; tries < 400; tries++) {
        const job = await json(await fetch(`${baseUrl(one)}/api/v1/jobs/${id}`, { headers }));
        if (job.state === 'succeeded') {
          assert.equal(job.attempts, 1);
          break;
        }
        assert.notEqual(job.state, 'failed');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    const events = await json(await fetch(`${baseUrl(two)}/api/v1/events?type=job.succeeded&limit=100`, { headers }));
    assert.equal(events.items.length, 10);
    assert.equal(new Set(events.items.map((e: { data: { job_id: string } }) => e.data.job_id)).size, 10);
  });
});
