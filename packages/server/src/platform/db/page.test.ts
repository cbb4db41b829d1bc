import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MusterError } from '@muster/contract';
import { decodeCursor, encodeCursor, finishPage } from './page.ts';

test('cursors round-trip and foreign cursors are a validation error on /cursor', () => {
  assert.deepEqual(decodeCursor(encodeCursor(['2026-01-01', 'm_1']), 2), ['2026-01-01', 'm_1']);
  for (const bad of ['nonsense', encodeCursor(['only-one']), Buffer.from('{"a":1}').toString('base64url')]) {
    assert.throws(
      () => decodeCursor(bad, 2),
      (e: unknown) => e instanceof MusterError && e.code === 'validation_failed' && e.errors[0].path === '/cursor',
    );
  }
});

test('a page fetched with limit + 1 rows has a next cursor; a short one has none', () => {
  const rows = [{ id: 'a' }, { id: 'b' }, { id: 'c' }];
  const full = finishPage(
    rows,
    2,
    (r) => [r.id],
    (r) => r.id,
  );
  assert.deepEqual(full, { items: ['a', 'b'], next_cursor: encodeCursor(['b']) });
  assert.deepEqual(
    finishPage(
      rows,
      3,
      (r) => [r.id],
      (r) => r.id,
    ),
    { items: ['a', 'b', 'c'], next_cursor: null },
  );
});
