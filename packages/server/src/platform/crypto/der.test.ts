import assert from 'node:assert/strict';
import { test } from 'node:test';
import { children, encode, integer, oid, oidText, readTlv, sequence, time } from './der.ts';

test('OIDs, integers and times encode as X.690 DER', () => {
  assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(oidText(oid('2.5.29.35').subarray(2)), '2.5.29.35');
  assert.equal(oidText(oid('1.3.6.1.5.5.7.3.2').subarray(2)), '1.3.6.1.5.5.7.3.2');
  assert.equal(integer(Buffer.from([0x00, 0x00, 0x7f])).toString('hex'), '02017f');
  assert.equal(integer(Buffer.from([0x80])).toString('hex'), '02020080');
  assert.equal(time(new Date('2026-12-04T00:19:43Z')).toString('latin1'), '\x17\x0d261204001943Z');
  assert.equal(time(new Date('2051-01-02T03:04:05Z')).toString('latin1'), '\x18\x0f20510102030405Z');
});

test('long lengths round-trip, and truncated or over-long input is refused', () => {
  for (const size of [0, 127, 128, 255, 256, 70_000]) {
    const tlv = readTlv(sequence(encode(0x04, Buffer.alloc(size, 7))));
    assert.equal(children(tlv)[0].content.length, size);
  }
  assert.throws(() => readTlv(Buffer.from([0x30, 0x05, 0x01])), /truncated/);
  assert.throws(() => readTlv(Buffer.from([0x30, 0x80])), /bad DER length/);
  assert.throws(() => readTlv(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1])), /bad DER length/);
});
