import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Rule } from '@muster/contract';
import { explainRules, factMatches, normalizeMacPrefix, selectRule } from './match.ts';

const base: Rule = {
  name: '',
  priority: 100,
  door: 'any',
  serial_pattern: null,
  mac_prefix: null,
  action: 'discover',
  pi_tree: null,
  labels: {},
  facts: {},
  match_labels: {},
  fleet: null,
  profile: null,
  approval: null,
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

test('fact conditions compare numbers and glob text, by dotted path', () => {
  const rules = [
    rule({ name: 'big-arm', facts: { 'cpu.architecture': 'aarch64', memory_gb: '>=8' } }),
    rule({ name: 'jetson', facts: { product: 'Jetson*' } }),
  ];
  const facts = { cpu: { architecture: 'AArch64' }, memory_gb: 16, product: 'Jetson Orin Nano' };
  assert.equal(selectRule(rules, { door: 'enroll', facts })?.name, 'big-arm');
  assert.equal(selectRule(rules, { door: 'enroll', facts: { ...facts, memory_gb: '4' } })?.name, 'jetson');
  assert.equal(selectRule(rules, { door: 'enroll', facts: { memory_gb: 'lots' } }), null);
  assert.equal(factMatches(undefined, '*'), false, 'a missing fact never matches, not even *');
  assert.equal(factMatches({ nested: 1 }, '*'), false, 'an object is not a value to match');
});

test('label conditions match the labels the door gives, and explain says why each rule did not match', () => {
  const rules = [
    rule({ name: 'lab', match_labels: { site: 'lab-*' }, door: 'claim' }),
    rule({ name: 'pi-only', door: 'pi' }),
    rule({ name: 'fallback', priority: 200 }),
  ];
  const explained = explainRules(rules, { door: 'claim', labels: { site: 'factory' } });
  assert.deepEqual(
    explained.map((e) => [e.rule.name, e.chosen, e.reasons]),
    [
      ['lab', false, ['label site is factory, not lab-*']],
      ['pi-only', false, ['door is claim, the rule wants pi']],
      ['fallback', true, []],
    ],
  );
  assert.equal(selectRule(rules, { door: 'claim', labels: { site: 'lab-3' } })?.name, 'lab');
});
