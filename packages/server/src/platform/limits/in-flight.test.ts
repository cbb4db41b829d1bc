import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightLimiter } from './in-flight.ts';

test('a source runs at most `running` at once, `waiting` more wait their turn in order, one more is refused', async () => {
  const limiter = new InFlightLimiter({ running: 2, waiting: 2 });
  const order: string[] = [];
  const take = (name: string) => {
    const entered = limiter.enter('10.0.0.1');
    if (!entered) {
      order.push(`${name} refused`);
      return null;
    }
    return entered.then((leave) => {
      order.push(`${name} runs`);
      return leave;
    });
  };
  const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map(take);
  assert.equal(e, null);
  const other = await limiter.enter('10.0.0.2');
  const [leaveA, leaveB] = await Promise.all([a, b]);
  leaveA?.();
  leaveA?.();
  const leaveC = await c;
  leaveB?.();
  const leaveD = await d;
  assert.deepEqual(order, ['e refused', 'a runs', 'b runs', 'c runs', 'd runs'], 'giving a place back twice passes it on once');
  for (const leave of [leaveC, leaveD, other]) leave?.();
  assert.equal(limiter.size, 0, 'a source with nothing in flight is forgotten');
});

test('with no waiting places, a source past `running` is refused at once', async () => {
  const limiter = new InFlightLimiter({ running: 1, waiting: 0 });
  const leave = await limiter.enter('a');
  assert.equal(limiter.enter('a'), null);
  leave?.();
  assert.notEqual(limiter.enter('a'), null);
});
