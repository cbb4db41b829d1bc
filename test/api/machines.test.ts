import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { type MachineState, transitions } from '@muster/contract';
import { eachDatabase, enrollBody, type Harness } from '../support/harness.ts';

/** The shortest way from enrolled to `target` through the transition table. */
function pathTo(target: MachineState): MachineState[] {
  const queue: MachineState[][] = [['enrolled']];
  const seen = new Set<MachineState>(['enrolled']);
  for (let path = queue.shift(); path; path = queue.shift()) {
    const last = path[path.length - 1];
    if (last === target) return path.slice(1);
    for (const next of transitions[last]) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push([...path, next]);
    }
  }
  throw new Error(`${target} cannot be reached from enrolled`);
}

async function enroll(h: Harness, n: number, extra: Record<string, unknown> = {}) {
  const reply = await h.request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n, extra) });
  assert.equal(reply.status, 201, reply.text);
  return reply.body as { id: string; service_tag: string; mac_address: string };
}

async function update(h: Harness, id: string, body: Record<string, unknown>) {
  const reply = await h.request('PUT', `/api/v1/machines/${id}`, { body });
  assert.equal(reply.status, 200, reply.text);
  return reply.body;
}

async function ids(h: Harness, query: string): Promise<string[]> {
  const reply = await h.request('GET', `/api/v1/machines?${query}`);
  assert.equal(reply.status, 200, reply.text);
  return reply.body.items.map((m: { id: string }) => m.id);
}

eachDatabase('Machine lifecycle', (h) => {
  let n = 0;
  const pairs = Object.entries(transitions).flatMap(([from, tos]) => tos.map((to) => [from as MachineState, to] as const));

  for (const [from, to] of pairs) {
    test(`${from} → ${to} succeeds and records actor, reason, from and to`, async () => {
      const machine = await enroll(h(), 100 + ++n);
      if (from === 'discovered') {
        // No API front door makes a discovered machine yet (TFTP and iPXE do); put one there directly.
        await h().muster.db.kysely.updateTable('machines').set({ state: 'discovered' }).where('id', '=', machine.id).execute();
      } else {
        for (const step of pathTo(from)) {
          const reply = await h().request('POST', `/api/v1/machines/${machine.id}/transition`, { body: { to: step } });
          assert.equal(reply.status, 200, `on the way to ${from}: ${reply.text}`);
        }
      }
      const reason = `test ${from} to ${to}`;
      const reply = await h().request('POST', `/api/v1/machines/${machine.id}/transition`, { body: { to, reason } });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual({ state: reply.body.state, status: reply.body.status }, { state: to, status: to });
      const events = await h().request('GET', `/api/v1/machines/${machine.id}/events?type=machine.state_changed`);
      const { type, machine_id, actor, data } = events.body.items.at(-1);
      assert.deepEqual(
        { type, machine_id, actor, reason: events.body.items.at(-1).reason, data },
        { type: 'machine.state_changed', machine_id: machine.id, actor: 'user:admin', reason, data: { from, to } },
      );
    });
  }
});

eachDatabase('Enrollment and identifiers', (h) => {
  test('enrolling twice with the same identifiers finds the same machine: 201, then 200', async () => {
    const body = enrollBody(1);
    const first = await h().request('POST', '/api/v1/enroll', { token: null, body });
    const again = await h().request('POST', '/api/v1/enroll', { token: null, body });
    assert.deepEqual([first.status, again.status], [201, 200]);
    assert.equal(again.body.id, first.body.id);
    const list = await h().request('GET', `/api/v1/machines?q=${body.service_tag}&total=true`);
    assert.deepEqual({ ids: list.body.items.map((m: { id: string }) => m.id), total: list.body.total }, { ids: [first.body.id], total: 1 });
  });

  test('the same enrollment sent five times at once makes one machine: one 201, four 200', async () => {
    const body = enrollBody(3);
    const replies = await Promise.all([1, 2, 3, 4, 5].map(() => h().request('POST', '/api/v1/enroll', { token: null, body })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 200, 200, 201]);
    assert.equal(new Set(replies.map((r) => r.body.id)).size, 1);
    const list = await h().request('GET', `/api/v1/machines?q=${body.service_tag}&total=true`);
    assert.equal(list.body.total, 1);
  });

  test('re-enrolling with a new MAC adds it to the machine', async () => {
    const body = enrollBody(2);
    const first = (await h().request('POST', '/api/v1/enroll', { token: null, body })).body;
    const reply = await h().request('POST', '/api/v1/enroll', {
      token: null,
      body: { ...body, identifiers: [{ kind: 'mac', value: '52:54:00:FF:00:02' }] },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.id, first.id);
    assert.equal(reply.body.mac_address, body.mac_address);
    assert.deepEqual(reply.body.identifiers, [
      { kind: 'mac', value: body.mac_address },
      { kind: 'mac', value: '52:54:00:ff:00:02' },
      { kind: 'serial', value: body.service_tag },
    ]);
    const byNewMac = await h().request('GET', '/api/v1/machines/mac:52:54:00:ff:00:02');
    assert.equal(byNewMac.body.id, first.id);
    const events = await h().request('GET', `/api/v1/machines/${first.id}/events`);
    assert.deepEqual(
      events.body.items.map((e: { type: string }) => e.type),
      ['machine.enrolled', 'machine.identifiers_added', 'machine.enrolled'],
    );
    assert.deepEqual(events.body.items[1].data.identifiers, [{ kind: 'mac', value: '52:54:00:ff:00:02' }]);
  });

  test('identifiers are normalised: MACs lower-case with colons, serials trimmed, UUIDs lower-case', async () => {
    const reply = await h().request('POST', '/api/v1/enroll', {
      token: null,
      body: { mac_address: '00-11-22-AA-BB-CC', serial: '  X1  ', uuid: '{4C4C4544-0042-3510-8052-B4C04F4E4D32}' },
    });
    assert.equal(reply.status, 201);
    assert.deepEqual(
      { service_tag: reply.body.service_tag, mac_address: reply.body.mac_address, identifiers: reply.body.identifiers },
      {
        service_tag: 'X1',
        mac_address: '00:11:22:aa:bb:cc',
        identifiers: [
          { kind: 'mac', value: '00:11:22:aa:bb:cc' },
          { kind: 'serial', value: 'X1' },
          { kind: 'uuid', value: '4c4c4544-0042-3510-8052-b4c04f4e4d32' },
        ],
      },
    );
    for (const ref of ['serial:X1', 'mac:00-11-22-AA-BB-CC', 'mac:001122aabbcc', 'uuid:4C4C4544004235108052B4C04F4E4D32']) {
      const found = await h().request('GET', `/api/v1/machines/${ref}`);
      assert.equal(found.body.id, reply.body.id, ref);
    }
  });
});

eachDatabase('Fleets and labels', (h) => {
  test('machines joining a fleet are numbered 1, 2, 3 and named NAME-N when they have no hostname', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } })).status, 201);
    const a = await enroll(h(), 1);
    const b = await enroll(h(), 2);
    const c = await enroll(h(), 3);
    await update(h(), c.id, { hostname: 'keep-me' });
    const joined = [];
    for (const machine of [a, b, c]) {
      const body = await update(h(), machine.id, { fleet: 'edge' });
      joined.push({ fleet: body.fleet, fleet_seq: body.fleet_seq, hostname: body.hostname });
    }
    assert.deepEqual(joined, [
      { fleet: 'edge', fleet_seq: 1, hostname: 'edge-1' },
      { fleet: 'edge', fleet_seq: 2, hostname: 'edge-2' },
      { fleet: 'edge', fleet_seq: 3, hostname: 'keep-me' },
    ]);
    const events = await h().request('GET', `/api/v1/machines/${a.id}/events?type=machine.fleet_joined`);
    assert.deepEqual(
      events.body.items.map((e: { actor: string; data: unknown }) => [e.actor, e.data]),
      [['user:admin', { fleet: 'edge', fleet_seq: 1 }]],
    );
  });

  test('machines joining a fleet at the same time get distinct numbers', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'rush' } })).status, 201);
    const machines = await Promise.all([21, 22, 23, 24, 25].map((n) => enroll(h(), n)));
    const joined = await Promise.all(machines.map((m) => h().request('PUT', `/api/v1/machines/${m.id}`, { body: { fleet: 'rush' } })));
    assert.deepEqual(
      joined.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    assert.deepEqual(joined.map((r) => r.body.fleet_seq).sort(), [1, 2, 3, 4, 5]);
    assert.deepEqual(joined.map((r) => r.body.hostname).sort(), ['rush-1', 'rush-2', 'rush-3', 'rush-4', 'rush-5']);
  });

  test('a fleet number is never reused after its machine leaves', async () => {
    const b = (await h().request('GET', '/api/v1/machines/serial:TAG00002')).body;
    const left = await update(h(), b.id, { fleet: null });
    assert.deepEqual({ fleet: left.fleet, fleet_seq: left.fleet_seq }, { fleet: null, fleet_seq: null });
    const d = await enroll(h(), 4);
    const joined = await update(h(), d.id, { fleet: 'edge' });
    assert.deepEqual({ fleet_seq: joined.fleet_seq, hostname: joined.hostname }, { fleet_seq: 4, hostname: 'edge-4' });
    const back = await update(h(), b.id, { fleet: 'edge' });
    assert.equal(back.fleet_seq, 5);
    const fleet = (await h().request('GET', '/api/v1/fleets/edge')).body;
    assert.deepEqual({ machine_count: fleet.machine_count, next_seq: fleet.next_seq }, { machine_count: 4, next_seq: 6 });
    const members = await h().request('GET', '/api/v1/machines?fleet=edge&sort=hostname');
    assert.deepEqual(
      members.body.items.map((m: { fleet_seq: number }) => m.fleet_seq),
      [1, 5, 4, 3],
    );
  });

  test('labels set with PUT filter the list by key=value and by key', async () => {
    const r1 = await enroll(h(), 11);
    const r1web = await enroll(h(), 12);
    const r2 = await enroll(h(), 13);
    await enroll(h(), 14);
    assert.deepEqual((await update(h(), r1.id, { labels: { rack: 'r1' } })).labels, { rack: 'r1' });
    await update(h(), r1web.id, { labels: { rack: 'r1', role: 'web' } });
    await update(h(), r2.id, { labels: { rack: 'r2' } });
    assert.deepEqual(await ids(h(), 'label=rack=r1'), [r1.id, r1web.id]);
    assert.deepEqual(await ids(h(), 'label=rack'), [r1.id, r1web.id, r2.id]);
    assert.deepEqual(await ids(h(), 'label=rack=r1&label=role=web'), [r1web.id]);
    assert.deepEqual(await ids(h(), 'label=role'), [r1web.id]);
    assert.deepEqual(await ids(h(), 'label=rack=r3'), []);
    const replaced = await update(h(), r1web.id, { labels: { rack: 'r2' } });
    assert.deepEqual(replaced.labels, { rack: 'r2' });
    assert.deepEqual(await ids(h(), 'label=role'), []);
  });
});

eachDatabase('Listing machines', (h) => {
  let alpha: { id: string };
  let bravo: { id: string };
  let charlie: { id: string };
  let groupId: string;

  before(async () => {
    await h().request('POST', '/api/v1/fleets', { body: { name: 'listfleet' } });
    groupId = (await h().request('POST', '/api/v1/groups', { body: { name: 'listgroup' } })).body.id;
    alpha = await enroll(h(), 1, { service_tag: 'LIST-AAA1' });
    bravo = await enroll(h(), 2, { service_tag: 'LIST-BBB2' });
    charlie = await enroll(h(), 3, { service_tag: 'LIST-CCC3' });
    await update(h(), alpha.id, { hostname: 'alpha', nixos_config: '{ }', fleet: 'listfleet', labels: { set: 'list' } });
    await update(h(), bravo.id, { hostname: 'bravo', labels: { set: 'list' } });
    await update(h(), charlie.id, { labels: { set: 'list' } });
    await h().request('PUT', `/api/v1/groups/${groupId}/machines/${bravo.id}`);
  });

  test('state filters by lifecycle state', async () => {
    assert.deepEqual(await ids(h(), 'state=configured'), [alpha.id]);
    assert.deepEqual(await ids(h(), 'status=configured'), [alpha.id]);
    assert.deepEqual(await ids(h(), 'state=enrolled'), [bravo.id, charlie.id]);
    assert.deepEqual(await ids(h(), 'state=ready'), []);
  });

  test('fleet filters by fleet name or id', async () => {
    const fleet = (await h().request('GET', '/api/v1/fleets/listfleet')).body;
    assert.deepEqual(await ids(h(), 'fleet=listfleet'), [alpha.id]);
    assert.deepEqual(await ids(h(), `fleet=${fleet.id}`), [alpha.id]);
  });

  test('group filters by group name or id', async () => {
    assert.deepEqual(await ids(h(), 'group=listgroup'), [bravo.id]);
    assert.deepEqual(await ids(h(), `group=${groupId}`), [bravo.id]);
  });

  test('q finds a serial by substring, any case, and a hostname', async () => {
    assert.deepEqual(await ids(h(), 'q=BBB'), [bravo.id]);
    assert.deepEqual(await ids(h(), 'q=ccc3'), [charlie.id]);
    assert.deepEqual(await ids(h(), 'q=LIST-'), [alpha.id, bravo.id, charlie.id]);
    assert.deepEqual(await ids(h(), 'q=lph'), [alpha.id]);
    assert.deepEqual(await ids(h(), `q=${alpha.id}`), [alpha.id]);
    // LIKE wildcards in q are taken literally.
    assert.deepEqual(await ids(h(), 'q=C_C'), []);
    assert.deepEqual(await ids(h(), 'q=%25'), []);
  });

  test('q follows changes: a new hostname, an added identifier; two letters search too', async () => {
    const created = (
      await h().request('POST', '/api/v1/machines', {
        body: { identifiers: [{ kind: 'serial', value: 'QSEARCH-0001' }], hostname: 'oldname-q' },
      })
    ).body;
    assert.deepEqual(await ids(h(), 'q=oldname-q'), [created.id]);
    await h().request('PUT', `/api/v1/machines/${created.id}`, { body: { hostname: 'renamed-q' } });
    assert.deepEqual(await ids(h(), 'q=oldname-q'), []);
    assert.deepEqual(await ids(h(), 'q=RENAMED-Q'), [created.id]);
    // Setting the same name again (as joining a fleet does) keeps it findable.
    await h().request('PUT', `/api/v1/machines/${created.id}`, { body: { hostname: 'renamed-q' } });
    assert.deepEqual(await ids(h(), 'q=RENAMED-Q'), [created.id]);
    await h().request('POST', `/api/v1/machines/${created.id}/identifiers`, { body: { kind: 'asset', value: 'ASSET-QZX9' } });
    assert.deepEqual(await ids(h(), 'q=qzx9'), [created.id]);
    assert.deepEqual(await ids(h(), 'q=ZX'), [created.id]);
    await h().request('POST', `/api/v1/machines/${created.id}/transition`, { body: { to: 'retired' } });
  });

  test('sort by hostname ascending and descending; no hostname sorts first', async () => {
    assert.deepEqual(await ids(h(), 'label=set=list&sort=hostname'), [charlie.id, alpha.id, bravo.id]);
    assert.deepEqual(await ids(h(), 'label=set=list&sort=hostname&order=asc'), [charlie.id, alpha.id, bravo.id]);
    assert.deepEqual(await ids(h(), 'label=set=list&sort=hostname&order=desc'), [bravo.id, alpha.id, charlie.id]);
  });

  test('filters combine', async () => {
    assert.deepEqual(await ids(h(), 'label=set=list&state=enrolled&q=bravo'), [bravo.id]);
    assert.deepEqual(await ids(h(), 'fleet=listfleet&state=enrolled'), []);
  });

  test("a machine's events are listed oldest first", async () => {
    const reply = await h().request('GET', `/api/v1/machines/${alpha.id}/events`);
    assert.equal(reply.status, 200);
    const events: { id: number; type: string; machine_id: string }[] = reply.body.items;
    assert.deepEqual(
      events.map((e) => e.type),
      ['machine.enrolled', 'machine.fleet_joined', 'machine.updated', 'machine.state_changed'],
    );
    assert.deepEqual(
      events.map((e) => e.id),
      [...events.map((e) => e.id)].sort((x, y) => x - y),
    );
    assert.ok(events.every((e) => e.machine_id === alpha.id));
    const bySerial = await h().request('GET', '/api/v1/machines/serial:LIST-AAA1/events');
    assert.deepEqual(bySerial.body, reply.body);
  });
});

eachDatabase('Paging through machines', (h) => {
  const created: { id: string; hostname: string }[] = [];

  before(async () => {
    for (let i = 0; i < 25; i++) {
      const machine = await enroll(h(), 500 + i);
      // Five machines share each hostname, so that the cursor must break ties by id.
      const hostname = `host${i % 5}`;
      await update(h(), machine.id, { hostname, labels: { set: 'page' } });
      created.push({ id: machine.id, hostname });
    }
    await enroll(h(), 999);
  });

  async function walk(query: string) {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/machines?label=set=page&limit=10${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const reply = await h().request('GET', url);
      assert.equal(reply.status, 200, reply.text);
      pages.push(reply.body.items.map((m: { id: string }) => m.id));
      cursor = reply.body.next_cursor;
    } while (cursor && pages.length < 10);
    return pages;
  }

  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const byHostname = (a: { id: string; hostname: string }, b: { id: string; hostname: string }) =>
    a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : byId(a, b);

  test('limit 10 over 25 machines gives pages of 10, 10 and 5 with every machine once, in id order', async () => {
    const pages = await walk('');
    assert.deepEqual(
      pages.map((p) => p.length),
      [10, 10, 5],
    );
    assert.deepEqual(
      pages.flat(),
      [...created].sort(byId).map((m) => m.id),
    );
  });

  test('paging sorted by a shared hostname still gives every machine once, in order, both ways', async () => {
    const ascending = [...created].sort(byHostname).map((m) => m.id);
    assert.deepEqual((await walk('&sort=hostname')).flat(), ascending);
    assert.deepEqual((await walk('&sort=hostname&order=desc')).flat(), [...ascending].reverse());
  });

  test('total=true counts every match, not just the page', async () => {
    const reply = await h().request('GET', '/api/v1/machines?label=set=page&limit=10&total=true');
    assert.deepEqual({ items: reply.body.items.length, total: reply.body.total }, { items: 10, total: 25 });
    const all = await h().request('GET', '/api/v1/machines?limit=1&total=true');
    assert.equal(all.body.total, 26);
    const without = await h().request('GET', '/api/v1/machines?limit=1');
    assert.equal(without.body.total, undefined);
  });
});
