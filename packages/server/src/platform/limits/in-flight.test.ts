import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightLimiter } from './in-flight.ts';

test('a source gets at most max places at once, and one more once a place is given back', () => {
  const limiter = new InFlightLimiter(2);
  const first = limiter.enter('10.0.0.1');
  const second = limiter.enter('10.0.0.1');
  assert.deepEqual(
    [first !== null, second !== null, limiter.enter('10.0.0.1'), limiter.enter('10.0.0.2') !== null],
    [true, true, null, true],
  );
  first?.();
  first?.();
  assert.notEqual(limiter.enter('10.0.0.1'), null);
  assert.equal(limiter.enter('10.0.0.1'), null, 'giving a place back twice frees it once');
});

test('a source with nothing in flight is forgotten', () => {
  const limiter = new InFlightLimiter(1);
  const leaves = ['a', 'b', 'c'].map((source) => limiter.enter(source));
  assert.equal(limiter.size, 3);
  for (const leave of leaves) leave?.();
  assert.equal(limiter.size, 0);
});
