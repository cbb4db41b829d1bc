import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MusterError } from '@muster/contract';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { MinuteBudget } from '../../platform/limits/budget.ts';
import { findMachineRow, loadMachines, updateMachineRow } from '../machines/store.ts';
import { defaultFactsBound } from './facts.ts';
import { EnrollService } from './service.ts';

let s: Scratch;
let enroll: EnrollService;
before(async () => {
  s = await scratchDatabase();
  enroll = new EnrollService(s.tx, { facts: defaultFactsBound, discoveries: new MinuteBudget(4) });
});
after(() => s.close());

const types = () => s.events.map((e) => e.type);

test('a new machine is made from its identifiers and facts; the same identifiers find it again', async () => {
  const first = await enroll.enroll(
    { service_tag: 'TAG-1', mac_address: '52-54-00-AA-BB-01', hardware: { cpu: { cores: 4 } } },
    '10.0.0.1',
  );
  assert.equal(first.created, true);
  assert.equal(first.machine.state, 'enrolled');
  assert.deepEqual(first.machine.identifiers, [
    { kind: 'mac', value: '52:54:00:aa:bb:01' },
    { kind: 'serial', value: 'TAG-1' },
  ]);
  const again = await enroll.enroll({ mac_address: '52:54:00:aa:bb:01', hardware: { cpu: { cores: 8 } } }, '10.0.0.1');
  assert.deepEqual([again.created, again.machine.id], [false, first.machine.id]);
  assert.deepEqual(again.machine.hardware, { cpu: { cores: 8 } });
  assert.deepEqual(types(), ['machine.enrolled', 'machine.enrolled']);
});

test('past enrolled, an anonymous enrollment changes nothing and is kept as a report', async () => {
  const { machine } = await enroll.enroll({ service_tag: 'TAG-2' }, '10.0.0.2');
  await s.tx.run((tx) => updateMachineRow(tx.db, machine.id, { state: 'ready' }));
  const reported = await enroll.enroll({ service_tag: 'TAG-2', hardware: { forged: true } }, '10.0.0.3');
  assert.deepEqual([reported.created, reported.machine.state, reported.machine.hardware], [false, 'ready', {}]);
  assert.equal(s.events.at(-1)?.type, 'machine.enroll_reported');
});

test('identifiers of two machines are a conflict, recorded and never merged', async () => {
  const a = (await enroll.enroll({ service_tag: 'TAG-3' }, '10.0.0.4')).machine;
  const b = (await enroll.enroll({ mac_address: '52:54:00:aa:bb:03' }, '10.0.0.4')).machine;
  await assert.rejects(
    enroll.enroll({ service_tag: 'TAG-3', mac_address: '52:54:00:aa:bb:03' }, '10.0.0.4'),
    (e) => e instanceof MusterError && e.code === 'identifier_conflict',
  );
  assert.equal(s.events.at(-1)?.type, 'machine.identifier_conflict');
  assert.notEqual(a.id, b.id);
});

test('firmware defaults identify nothing; past the new-machine budget nothing is created', async () => {
  await assert.rejects(
    enroll.enroll({ service_tag: 'To Be Filled By O.E.M.' }, '10.0.0.5'),
    (e) => e instanceof MusterError && e.code === 'no_usable_identifier',
  );
  // The budget of 4 a minute is spent: TAG-1, TAG-2, TAG-3 and the MAC-only machine.
  await assert.rejects(enroll.enroll({ service_tag: 'TAG-NEW' }, '10.0.0.6'), (e) => e instanceof MusterError && e.code === 'rate_limited');
});

test("a new machine's answer, built from the request, is the machine as stored, hardware and all", async () => {
  const unlimited = new EnrollService(s.tx);
  const hardware = {
    system: { manufacturer: 'Dell Inc.', product: 'PowerEdge R650', serial: 'TAG-9' },
    disks: [{ name: 'sda', size_bytes: 480103981056, rotational: false, model: null }],
    '10': 'integer-like keys come first once parsed',
    cpu: { flags: ['avx2', 'aes'], mhz: 2000.5 },
  };
  const { machine } = await unlimited.enroll({ service_tag: 'TAG-9', mac_address: '52:54:00:aa:bb:09', hardware }, '10.0.0.9');
  const row = await findMachineRow(s.db.kysely, machine.id);
  assert.ok(row);
  assert.deepEqual(machine, (await loadMachines(s.db.kysely, [row]))[0]);
  assert.equal(JSON.stringify(machine.hardware), row.facts);
});
