import assert from 'node:assert/strict';
import { test } from 'node:test';
import { negotiate } from './options.ts';
import { TftpError } from './types.ts';

const defaults = { timeoutMs: 1000, retries: 5, unconfirmedRetries: 2, busyPollMs: 0.1, fileLimitMs: 30_000 };

test('blksize, tsize, timeout and windowsize are acknowledged; unknown options are not', () => {
  const { settings, oack } = negotiate({ blksize: '1468', tsize: '0', timeout: '3', windowsize: '16', colour: 'red' }, 4096, defaults);
  assert.deepEqual(oack, { blksize: '1468', tsize: '4096', timeout: '3', windowsize: '16' });
  assert.deepEqual(settings, {
    blksize: 1468,
    windowsize: 16,
    timeoutMs: 3000,
    retries: 5,
    unconfirmedRetries: 2,
    busyPollMs: 0.1,
    fileLimitMs: 30_000,
  });
});

test('no known option means no OACK and RFC 1350 defaults', () => {
  assert.deepEqual(negotiate({ colour: 'red' }, 10, defaults), {
    settings: { blksize: 512, windowsize: 1, timeoutMs: 1000, retries: 5, unconfirmedRetries: 2, busyPollMs: 0.1, fileLimitMs: 30_000 },
    oack: null,
  });
});

test('blksize above 65464 is answered with 65464; below 8 or not a number is error 8', () => {
  assert.equal(negotiate({ blksize: '70000' }, 1, defaults).oack?.blksize, '65464');
  for (const bad of ['7', '0', 'abc', '-1']) {
    assert.throws(
      () => negotiate({ blksize: bad }, 1, defaults),
      (e: unknown) => e instanceof TftpError && e.code === 8,
    );
  }
});

test('an out-of-range timeout is ignored; an out-of-range windowsize is error 8', () => {
  assert.deepEqual(negotiate({ timeout: '0' }, 1, defaults).oack, null);
  assert.throws(() => negotiate({ windowsize: '0' }, 1, defaults), TftpError);
});
