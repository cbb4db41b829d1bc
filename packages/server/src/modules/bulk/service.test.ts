import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MusterError } from '@muster/contract';
import type { Principal } from '../../platform/auth/policy.ts';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { BuildService } from '../builds/service.ts';
import { GroupService } from '../groups/service.ts';
import { MachineService } from '../machines/service.ts';
import { UserService } from '../users/service.ts';
import { BulkService } from './service.ts';

let s: Scratch;
let bulk: BulkService;
let machines: MachineService;
let operator: Principal;
const ids: string[] = [];
before(async () => {
  s = await scratchDatabase();
  machines = new MachineService(s.tx);
  const groups = new GroupService(s.tx, machines);
  const builds = new BuildService(
    s.tx,
    s.tx.dialect,
    { dataDir: '/nonexistent', builder: { command: null, timeoutSeconds: 1, maxAttempts: 1 } },
    () => {},
  );
  bulk = new BulkService(s.tx, machines, groups, builds);
  const user = await new UserService(s.tx).create('test', { username: 'op', password: 'a long enough password', role: 'operator' });
  operator = { userId: user.id, username: 'op', role: 'operator', tokenId: null, actor: 'user:op' };
  for (const n of [1, 2, 3]) ids.push((await machines.create('test', { identifiers: [{ kind: 'serial', value: `BULK-${n}` }] })).id);
});
after(() => s.close());

test('each machine succeeds or fails on its own, and the result says which', async () => {
  await machines.transition('test', ids[2], 'retired');
  const result = await bulk.run(operator, { machine_ids: ids, operation: 'transition', data: { to: 'configured' } });
  assert.deepEqual([result.total, result.succeeded], [3, 2]);
  assert.deepEqual(
    result.results.map((r) => r.ok),
    [true, true, false],
  );
});

test('an Idempotency-Key replays the first answer and refuses a different request', async () => {
  const request = { machine_ids: ids.slice(0, 2), operation: 'update' as const, data: { labels: { wave: '1' } } };
  const first = await bulk.run(operator, request, 'key-1');
  assert.equal(first.succeeded, 2);
  const eventsAfterFirst = s.events.length;
  assert.deepEqual(await bulk.run(operator, request, 'key-1'), first);
  assert.equal(s.events.length, eventsAfterFirst, 'a replay changes nothing');
  await assert.rejects(
    bulk.run(operator, { ...request, data: { labels: { wave: '2' } } }, 'key-1'),
    (e) => e instanceof MusterError && e.code === 'idempotency_mismatch',
  );
});
