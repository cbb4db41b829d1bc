import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId, ulid } from './ids.ts';

test('ids are a prefix and 26 lower-case base32 characters', () => {
  assert.match(newId('m'), /^m_[0-9a-hjkmnp-tv-z]{26}$/);
});

test('the time part encodes the milliseconds, so ids of later times sort later', () => {
  assert.equal(ulid(0).slice(0, 10), '0000000000');
  assert.equal(ulid(1469918176385).slice(0, 10), '01aryz6s41');
  assert.ok(ulid(1_000) < ulid(2_000));
});

test('ids made in one millisecond are distinct and increasing', () => {
  const ids = Array.from({ length: 10_000 }, () => ulid(1_700_000_000_000));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
});
