import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SourceLimiter, sourceKey } from './limiter.ts';

test('a source gets its burst at once, then one request per refill interval, with the wait in whole seconds', () => {
  const limiter = new SourceLimiter({ ratePerMinute: 60, burst: 3 });
  const at = 1_000_000;
  assert.deepEqual(
    [0, 1, 2, 3].map(() => limiter.take('10.0.0.1', at)),
    [0, 0, 0, 1],
  );
  assert.equal(limiter.take('10.0.0.2', at), 0, 'another source has its own bucket');
  assert.equal(limiter.take('10.0.0.1', at + 1000), 0, 'one token back after a second');
  assert.equal(limiter.take('10.0.0.1', at + 1000), 1);
});

test('a rate of 0 turns the limit off', () => {
  const limiter = new SourceLimiter({ ratePerMinute: 0, burst: 1 });
  assert.deepEqual(
    Array.from({ length: 5 }, () => limiter.take('a')),
    [0, 0, 0, 0, 0],
  );
  assert.equal(limiter.enabled, false);
});

test('a spray of 10,000 sources keeps at most maxSources buckets; the oldest is forgotten first', () => {
  const limiter = new SourceLimiter({ ratePerMinute: 60, burst: 1, maxSources: 100 });
  assert.equal(limiter.take('first', 0), 0);
  assert.equal(limiter.take('first', 0), 1);
  for (let i = 0; i < 10_000; i++) limiter.take(`spray-${i}`, 0);
  assert.equal(limiter.size, 100);
  // Forgotten, it starts again with its burst, never more.
  assert.deepEqual([limiter.take('first', 0), limiter.take('first', 0)], [0, 1]);
});

test('IPv6 sources are limited per /64, the block one host is given; IPv4-mapped addresses are IPv4', () => {
  assert.deepEqual(
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::ffff', '2001:0db8:0001:0003::1', '::ffff:10.0.0.1', '10.0.0.1', '::1'].map(sourceKey),
    ['2001:db8:1:2::/64', '2001:db8:1:2::/64', '2001:db8:1:3::/64', '10.0.0.1', '10.0.0.1', '0:0:0:0::/64'],
  );
});
