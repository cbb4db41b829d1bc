import assert from 'node:assert/strict';
import { test } from 'node:test';
import { safePath } from './path.ts';
import { TftpError } from './types.ts';

test('names become relative with single slashes: leading slash, backslashes and the Pi 5 double slash', () => {
  assert.equal(safePath('/pxelinux.0'), 'pxelinux.0');
  assert.equal(safePath('d6e8f2a1//config.txt'), 'd6e8f2a1/config.txt');
  assert.equal(safePath('boot\\efi\\grubx64.efi'), 'boot/efi/grubx64.efi');
  assert.equal(safePath('./a/./b'), 'a/b');
});

test('traversal is refused in every spelling, as are control characters and overlong names', () => {
  for (const name of [
    '../etc/passwd',
    '/../../etc/passwd',
    '..\\..\\etc\\passwd',
    'a/../../x',
    'a/..',
    '%2e%2e/etc/passwd',
    'a%2fb',
    'a\u0001b',
    'x'.repeat(256),
    '',
    '/',
    '//',
  ]) {
    assert.throws(
      () => safePath(name),
      (e: unknown) => e instanceof TftpError && e.code === 2 && !e.message.includes('/'),
      JSON.stringify(name),
    );
  }
});
