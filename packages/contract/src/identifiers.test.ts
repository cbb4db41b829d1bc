import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MusterError } from './errors.ts';
import { isBogus, isPiSerial, normalizeIdentifier, normalizePiSerial, parseIdentifierRef } from './identifiers.ts';

test('MACs in every common spelling normalise to lower-case colon form', () => {
  for (const raw of ['00:11:22:AA:BB:CC', '00-11-22-aa-bb-cc', '001122AABBCC', '0011.22aa.bbcc', ' 00:11:22:aa:bb:cc ']) {
    assert.deepEqual(normalizeIdentifier('mac', raw), { kind: 'mac', value: '00:11:22:aa:bb:cc' });
  }
});

test('UUIDs normalise to lower-case dashed form, braces dropped', () => {
  assert.deepEqual(normalizeIdentifier('uuid', '{4C4C4544-0042-3510-8052-B4C04F4E4D32}'), {
    kind: 'uuid',
    value: '4c4c4544-0042-3510-8052-b4c04f4e4d32',
  });
});

test('serials are trimmed and keep their case, except a Pi serial, which is lower-cased as its bootloader asks', () => {
  assert.deepEqual(normalizeIdentifier('serial', '  AbC123 '), { kind: 'serial', value: 'AbC123' });
  assert.deepEqual(normalizeIdentifier('serial', ' ABCD1234'), { kind: 'serial', value: 'abcd1234' });
  // A Pi 4's (10000000…) or Pi 3's (00000000…) whole serial is the 8 digits its bootloader sends in TFTP paths.
  assert.deepEqual(normalizeIdentifier('serial', '10000000DCA63201'), { kind: 'serial', value: 'dca63201' });
  assert.deepEqual(normalizeIdentifier('serial', '00000000dca63201'), { kind: 'serial', value: 'dca63201' });
  assert.deepEqual(parseIdentifierRef('serial:10000000dca63201'), { kind: 'serial', value: 'dca63201' });
  // Other 16 hex digits may be any vendor's serial (a Pi 5's too): kept whole outside the Pi doors.
  assert.deepEqual(normalizeIdentifier('serial', '0C8F7E5CBD989AE1'), { kind: 'serial', value: '0c8f7e5cbd989ae1' });
  // Hex of another length is no Pi serial: a 12-digit one keeps its case.
  assert.deepEqual(normalizeIdentifier('serial', 'ABCDEF123456'), { kind: 'serial', value: 'ABCDEF123456' });
  assert.equal(isPiSerial('abcd1234'), true);
  assert.equal(isPiSerial('ABCD1234'), true);
  assert.equal(isPiSerial('abcd12345'), false);
  assert.equal(isPiSerial('abcd123g'), false);
});

test('a serial known to be a Pi’s is the 8 digits of its TFTP path, from either form, a Pi 5’s whole serial too', () => {
  assert.deepEqual(['dca63201', ' DCA63201 ', '10000000dca63201', '00000000DCA63201', '0c8f7e5cbd989ae1'].map(normalizePiSerial), [
    'dca63201',
    'dca63201',
    'dca63201',
    'dca63201',
    'bd989ae1',
  ]);
  for (const raw of ['SVC1234', 'dca6320', '10000000dca632011', 'dca6320g']) {
    assert.throws(
      () => normalizePiSerial(raw),
      (error: unknown) => error instanceof MusterError && error.code === 'invalid_identifier' && error.errors[0]?.path === '/serial',
      raw,
    );
  }
});

test('firmware defaults and repeated characters identify nothing', () => {
  for (const raw of [
    'To Be Filled By O.E.M.',
    'to be filled by o.e.m.',
    'System Serial Number',
    '0123456789',
    '00000000',
    'FFFFFFFF',
    ' ',
    'N/A',
  ]) {
    assert.equal(isBogus(raw), true, raw);
    assert.equal(normalizeIdentifier('serial', raw), null, raw);
  }
  assert.equal(normalizeIdentifier('mac', '00:00:00:00:00:00'), null);
  assert.equal(normalizeIdentifier('uuid', '00000000-0000-0000-0000-000000000000'), null);
  assert.equal(normalizeIdentifier('uuid', 'ffffffff-ffff-ffff-ffff-ffffffffffff'), null);
});

test('malformed values are refused with invalid_identifier and the kind as path', () => {
  for (const [kind, raw] of [
    ['mac', '00:11:22:33:44'],
    ['mac', 'zz:11:22:33:44:55'],
    ['uuid', 'not-a-uuid'],
    ['ek', 'abc'],
    ['serial', 'xy'.repeat(65)],
    ['serial', 'AB\u0000C'],
  ] as const) {
    assert.throws(
      () => normalizeIdentifier(kind, raw),
      (e: unknown) => e instanceof MusterError && e.code === 'invalid_identifier' && e.errors[0].path === `/${kind}`,
    );
  }
});

test('identifier references parse kind:value and reject unknown kinds', () => {
  assert.deepEqual(parseIdentifierRef('serial:ABC123'), { kind: 'serial', value: 'ABC123' });
  assert.deepEqual(parseIdentifierRef('mac:52:54:00:12:34:56'), { kind: 'mac', value: '52:54:00:12:34:56' });
  assert.equal(parseIdentifierRef('m_01abc'), null);
  assert.equal(parseIdentifierRef('colour:red'), null);
});
