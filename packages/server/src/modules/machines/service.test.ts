import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MusterError } from '@muster/contract';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { FleetService } from '../fleets/service.ts';
import { MachineService } from './service.ts';

let s: Scratch;
let machines: MachineService;
before(async () => {
  s = await scratchDatabase();
  machines = new MachineService(s.tx);
  await new FleetService(s.tx).create('test', { name: 'edge' });
});
after(() => s.close());

const fails = (code: string) => (e: unknown) => e instanceof MusterError && e.code === code;

test('a machine registered by hand is enrolled, its identifiers normalised, and found by any of them', async () => {
  const machine = await machines.create('test', {
    identifiers: [
      { kind: 'serial', value: ' ABCD1234 ' },
      { kind: 'mac', value: 'DC-A6-32-01-02-03' },
    ],
    hostname: 'pi-a',
  });
  assert.equal(machine.state, 'enrolled');
  assert.deepEqual(machine.identifiers, [
    { kind: 'mac', value: 'dc:a6:32:01:02:03' },
    { kind: 'serial', value: 'abcd1234' },
  ]);
  for (const ref of ['serial:ABCD1234', 'mac:dc:a6:32:01:02:03', machine.id]) assert.equal((await machines.get(ref)).id, machine.id);
  await assert.rejects(machines.create('test', { identifiers: [{ kind: 'serial', value: 'abcd1234' }] }), fails('identifier_conflict'));
  await assert.rejects(
    machines.create('test', { identifiers: [{ kind: 'serial', value: 'Default string' }] }),
    fails('no_usable_identifier'),
  );
});

test('joining a fleet numbers and names a machine; the lifecycle refuses a jump it does not allow', async () => {
  const a = await machines.create('test', { identifiers: [{ kind: 'serial', value: 'FLEET-A' }] });
  const joined = await machines.update('test', a.id, { fleet: 'edge' });
  assert.deepEqual([joined.fleet, joined.fleet_seq, joined.hostname], ['edge', 1, 'edge-1']);
  await assert.rejects(machines.transition('test', a.id, 'provisioned'), fails('illegal_transition'));
  assert.equal((await machines.get(a.id)).state, 'enrolled');
  const retired = await machines.transition('test', a.id, 'retired', 'broken');
  assert.equal(retired.state, 'retired');
});
