import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressNumber, addressText, lowestFree, parseCidr, rangeSize } from './cidr.ts';

const n = (text: string) => addressNumber(text)?.n as bigint;

test('IPv4 ranges leave out network and broadcast, except /31 and /32', () => {
  const r = parseCidr('10.20.0.77/24');
  assert.equal(r.text, '10.20.0.0/24');
  assert.equal(addressText(r.first, 4), '10.20.0.1');
  assert.equal(addressText(r.last, 4), '10.20.0.254');
  assert.equal(rangeSize(parseCidr('10.0.0.0/31')), 2n);
  assert.equal(rangeSize(parseCidr('10.0.0.9/32')), 1n);
});

test('IPv6 ranges are written canonically and leave out only the subnet-router anycast address', () => {
  const r = parseCidr('FD00:0020:0000:0000:0000:0000:0000:0000/64');
  assert.equal(r.text, 'fd00:20::/64');
  assert.equal(addressText(r.first, 6), 'fd00:20::1');
  assert.equal(addressText(r.last, 6), 'fd00:20::ffff:ffff:ffff:ffff');
  assert.equal(rangeSize(r), 2n ** 64n - 1n);
  assert.equal(rangeSize(parseCidr('fd00::/127')), 2n);
  assert.equal(rangeSize(parseCidr('fd00::5/128')), 1n);
});

test('RFC 5952: lower case, no leading zeros, the longest zero run compressed, the first of equal runs, no :: for one group', () => {
  for (const [written, canonical] of [
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8:0:0:1:0:0:0', '2001:db8:0:0:1::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::1', '::1'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
  ]) {
    assert.equal(addressText(n(written), 6), canonical, written);
  }
});

test('bad ranges are refused with what a range looks like', () => {
  for (const bad of [
    '10.0.0.0',
    '10.0.0.0/7',
    '10.0.0.0/33',
    '300.0.0.0/24',
    'fd00::/0',
    'fd00::/48',
    'fd00::/129',
    '::ffff:10.0.0.0/120',
    '::ffff:a00:0/120',
    'garbage/64',
    'fd00::/6x',
    '',
  ]) {
    assert.throws(() => parseCidr(bad), /is not an IPv4 range/, bad);
  }
});

test('the lowest free address is found among the gaps, without walking a huge range', () => {
  const r = parseCidr('fd00::/64');
  assert.equal(lowestFree(r, []), r.first);
  assert.equal(lowestFree(r, [r.first, r.first + 1n, r.first + 3n]), r.first + 2n);
  assert.equal(lowestFree(r, [r.first + 5n, r.first - 1n]), r.first, 'addresses outside the range do not count');
  const tiny = parseCidr('fd00::/127');
  assert.equal(lowestFree(tiny, [tiny.first, tiny.last]), null);
});
