import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dataPacket, decode, errorPacket, oackPacket } from './packet.ts';
import { TftpError } from './types.ts';

const rrq = (...fields: string[]) => Buffer.concat([Buffer.from([0, 1]), Buffer.from(fields.map((f) => `${f}\0`).join(''), 'latin1')]);

test('a read request decodes with lower-cased mode and option names, the first of duplicates kept', () => {
  assert.deepEqual(decode(rrq('pxelinux.0', 'OCTET', 'BlkSize', '1468', 'tsize', '0', 'blksize', '512')), {
    op: 'rrq',
    filename: 'pxelinux.0',
    mode: 'octet',
    options: { blksize: '1468', tsize: '0' },
    duplicated: true,
  });
});

test('malformed requests are error 4: missing NUL, odd option list, short or unknown packets', () => {
  for (const bad of [
    Buffer.from([0, 1, 0x61]),
    rrq('a', 'octet', 'blksize'),
    Buffer.from([0, 1]),
    Buffer.from([0, 9, 0, 0]),
    Buffer.from([0, 1, 0x61, 0]),
  ]) {
    assert.throws(
      () => decode(bad),
      (e: unknown) => e instanceof TftpError && e.code === 4,
    );
  }
});

test('DATA, ERROR and OACK encode as RFC 1350 and 2347 lay them out; block numbers wrap at 16 bits', () => {
  assert.deepEqual([...dataPacket(65537, Buffer.from('hi'))], [0, 3, 0, 1, 0x68, 0x69]);
  assert.deepEqual([...errorPacket(1, 'File not found')], [0, 5, 0, 1, ...Buffer.from('File not found'), 0]);
  assert.deepEqual(oackPacket({ blksize: '1468' }).toString('latin1'), '\0\u0006blksize\u00001468\0');
});
