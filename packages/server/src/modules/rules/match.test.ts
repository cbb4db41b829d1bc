import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Rule } from '@muster/contract';
import { normalizeMacPrefix, selectRule } from './match.ts';

const base: Rule = {
  name: '',
  priority: 100,
  door: 'any',
  serial_pattern: null,
  mac_prefix: null,
  action: 'discover',
  pi_tree: null,
  labels: {},
  created_at: '',
  updated_at: '',
};
const rule = (fields: Partial<Rule>): Rule => ({ ...base, ...fields });

test('the first rule by priority wins, whatever the order given', () => {
  const rules = [rule({ name: 'late', priority: 200, serial_pattern: '*' }), rule({ name: 'early', priority: 10, serial_pattern: '*' })];
  assert.equal(selectRule(rules, { door: 'pi', serial: 'abcd1234' })?.name, 'early');
});

test('at equal priority the more specific rule wins, then the name', () => {
  const rules = [
    rule({ name: 'all', serial_pattern: '*' }),
    rule({ name: 'lab', serial_pattern: 'ab*' }),
    rule({ name: 'lab-pi', door: 'pi', serial_pattern: 'ab*' }),
    rule({ name: 'b', serial_pattern: 'cd*' }),
    rule({ name: 'a', serial_pattern: 'cd*' }),
  ];
  assert.equal(selectRule(rules, { door: 'pi', serial: 'abcd1234' })?.name, 'lab-pi');
  assert.equal(selectRule(rules, { door: 'ipxe', serial: 'abcd1234' })?.name, 'lab');
  assert.equal(selectRule(rules, { door: 'pi', serial: 'cd001234' })?.name, 'a');
  assert.equal(selectRule(rules, { door: 'pi', serial: 'ef001234' })?.name, 'all');
});

test('a condition on something the door does not know never matches', () => {
  const rules = [rule({ name: 'oui', mac_prefix: 'dc:a6:32' }), rule({ name: 'serial', serial_pattern: '1*' })];
  assert.equal(selectRule(rules, { door: 'pi', serial: 'abcd1234' }), null);
  assert.equal(selectRule(rules, { door: 'ipxe', mac: 'dc:a6:32:01:02:03' })?.name, 'oui');
});

test('serial globs ignore case and know character classes', () => {
  const rules = [rule({ name: 'class', serial_pattern: '[0-7]*' })];
  assert.equal(selectRule(rules, { door: 'pi', serial: '7ABC0000' })?.name, 'class');
  assert.equal(selectRule(rules, { door: 'pi', serial: '8abc0000' }), null);
});

test('MAC prefixes are normalised', () => {
  assert.equal(normalizeMacPrefix('DC-A6-32'), 'dc:a6:32');
  assert.equal(normalizeMacPrefix('dca632'), 'dc:a6:32');
});
