import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RuleService } from '../../modules/rules/service.ts';
import { type Scratch, scratchDatabase } from '../../platform/db/scratch.ts';
import { MinuteBudget } from '../../platform/limits/budget.ts';
import { type BootArrival, BootDiscovery } from './resolve.ts';

let s: Scratch;
let discovery: BootDiscovery;
before(async () => {
  s = await scratchDatabase();
  const rules = new RuleService(s.tx);
  await rules.put('test', 'quarantine', { door: 'pi', serial_pattern: 'dead*', action: 'refuse', priority: 10 });
  await rules.put('test', 'quiet', { door: 'pi', serial_pattern: 'beef*', action: 'ignore', priority: 10 });
  await rules.put('test', 'lab', { door: 'any', serial_pattern: 'ab*', action: 'discover', labels: { site: 'lab' } });
  discovery = new BootDiscovery(s.tx, rules, { discoveries: new MinuteBudget(3), reports: new MinuteBudget(0) });
});
after(() => s.close());

const pi = (serial: string): BootArrival => ({
  claim: { door: 'pi', serial },
  identifiers: [{ kind: 'serial', value: serial }],
  client: '10.0.0.9',
});

test('an unseen machine its rule discovers is created on its first request, with the rule’s labels; then it is known', async () => {
  const first = await discovery.identify(pi('ab000001'));
  assert.equal(first.kind, 'machine');
  assert.ok(first.kind === 'machine' && first.created && first.rule?.name === 'lab');
  const again = await discovery.identify(pi('ab000001'));
  assert.ok(again.kind === 'machine' && !again.created && again.machine.id === (first.kind === 'machine' && first.machine.id));
  assert.deepEqual(
    s.events.filter((e) => e.type === 'machine.discovered').map((e) => e.data?.rule),
    ['lab'],
  );
});

test('ignore answers nothing and records nothing; refuse and no rule are events; peek changes nothing', async () => {
  const before = s.events.length;
  assert.equal((await discovery.peek(pi('ab000099'))).kind, 'pending');
  assert.equal(s.events.length, before, 'peek records nothing');
  assert.equal((await discovery.identify(pi('beef0001'))).kind, 'ignored');
  assert.equal(s.events.length, before);
  assert.equal((await discovery.identify(pi('dead0001'))).kind, 'refused');
  assert.equal((await discovery.identify(pi('cafe0001'))).kind, 'unmatched');
  assert.deepEqual(
    s.events.slice(before).map((e) => e.type),
    ['boot.refused', 'boot.unmatched'],
  );
});

test('the iPXE door discovers unmatched machines too; past the budget an unseen machine is throttled', async () => {
  const ipxe = (mac: string): BootArrival => ({
    claim: { door: 'ipxe', mac },
    identifiers: [{ kind: 'mac', value: mac }],
    client: '10.0.0.8',
  });
  const found = await discovery.identify(ipxe('52:54:00:00:00:01'), { discoverUnmatched: true });
  assert.ok(found.kind === 'machine' && found.created && found.rule === null);
  assert.equal((await discovery.identify(pi('ab000002'))).kind, 'machine');
  // Three new machines this minute: the budget is spent.
  const throttled = await discovery.identify(pi('ab000003'));
  assert.ok(throttled.kind === 'throttled' && throttled.retryAfter > 0);
  assert.equal((await discovery.peek(pi('ab000003'))).kind, 'pending', 'nothing was created');
});
