import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noneMatch, parseRange, rangeStillValid } from './range.ts';

test('single byte ranges in their three forms', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=900-', 1000), { kind: 'partial', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', 1000), { kind: 'partial', start: 900, end: 999 });
  assert.deepEqual(parseRange('Bytes = 5 - 5', 1000), { kind: 'partial', start: 5, end: 5 });
});

test('ranges past the end are cut to the file; a suffix longer than the file is the whole file', () => {
  assert.deepEqual(parseRange('bytes=990-5000', 1000), { kind: 'partial', start: 990, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', 1000), { kind: 'partial', start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=0-99999999999999999999999', 10), { kind: 'partial', start: 0, end: 9 });
});

test('a range starting at or past the end, an empty suffix, or any range of an empty file cannot be satisfied', () => {
  for (const [header, size] of [
    ['bytes=1000-', 1000],
    ['bytes=1000-2000', 1000],
    ['bytes=-0', 1000],
    ['bytes=0-', 0],
    ['bytes=-1', 0],
  ] as const) {
    assert.deepEqual(parseRange(header, size), { kind: 'unsatisfiable' }, header);
  }
});

test('no header, other units, malformed specs and several ranges mean the whole file', () => {
  for (const header of [
    undefined,
    '',
    'items=0-1',
    'bytes=',
    'bytes=-',
    'bytes=a-b',
    'bytes=5-1',
    'bytes=0-1,4-5',
    'bytes 0-1',
    'bytes=1-2-3',
  ]) {
    assert.deepEqual(parseRange(header, 1000), { kind: 'whole' }, String(header));
  }
});

test('If-None-Match compares weakly and understands lists and *', () => {
  const etag = '"abc"';
  assert.equal(noneMatch('"abc"', etag), true);
  assert.equal(noneMatch('W/"abc"', etag), true);
  assert.equal(noneMatch('"x", "abc"', etag), true);
  assert.equal(noneMatch('*', etag), true);
  assert.equal(noneMatch('"abcd"', etag), false);
  assert.equal(noneMatch(undefined, etag), false);
});

test('If-Range keeps the range only for this exact strong ETag', () => {
  assert.equal(rangeStillValid(undefined, '"abc"'), true);
  assert.equal(rangeStillValid('"abc"', '"abc"'), true);
  assert.equal(rangeStillValid('W/"abc"', '"abc"'), false);
  assert.equal(rangeStillValid('"other"', '"abc"'), false);
  assert.equal(rangeStillValid('Wed, 21 Oct 2015 07:28:00 GMT', '"abc"'), false);
});
