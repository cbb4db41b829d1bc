import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultRequestRate, RequestRateLimit } from './rate.ts';

test('a client gets its burst at once, then one request per 1/perSecond', () => {
  const limit = new RequestRateLimit({ burst: 3, perSecond: 2 });
  assert.deepEqual(
    [0, 0, 0, 0].map(() => limit.take('10.0.0.5', 1000)),
    [true, true, true, false],
  );
  assert.equal(limit.take('10.0.0.5', 1400), false, '0.8 of a token after 400 ms');
  assert.equal(limit.take('10.0.0.5', 1500), true, 'one token after 500 ms');
  assert.equal(limit.take('10.0.0.5', 1500), false);
});

test('each address has a bucket of its own', () => {
  const limit = new RequestRateLimit({ burst: 1, perSecond: 1 });
  assert.equal(limit.take('10.0.0.5', 0), true);
  assert.equal(limit.take('10.0.0.5', 0), false);
  assert.equal(limit.take('10.0.0.6', 0), true);
  assert.equal(limit.take('fe80::1', 0), true);
});

test('the default lets a Pi make its ~15 requests of a boot at once, and again on a retry a few seconds later', () => {
  const limit = new RequestRateLimit(defaultRequestRate);
  for (let i = 0; i < 15; i++) assert.equal(limit.take('10.0.0.5', 0), true, `request ${i + 1} of the first boot`);
  for (let i = 0; i < 15; i++) assert.equal(limit.take('10.0.0.5', 3000), true, `request ${i + 1} of the second boot`);
});

test('a refilled bucket is forgotten, so the table does not keep every address ever seen', () => {
  const limit = new RequestRateLimit({ burst: 2, perSecond: 1 });
  for (let i = 0; i < 100; i++) limit.take(`10.0.${i >> 8}.${i & 0xff}`, 0);
  assert.equal(limit.size, 100);
  limit.take('10.1.0.1', 20_000);
  assert.equal(limit.size, 1);
});

test('a rate without a whole burst or with no refill is refused', () => {
  assert.throws(() => new RequestRateLimit({ burst: 0, perSecond: 1 }), /burst must be at least 1/);
  assert.throws(() => new RequestRateLimit({ burst: 5, perSecond: 0 }), /perSecond above 0/);
});
