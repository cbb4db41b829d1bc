import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MusterError } from '@muster/contract';
import { boundedFacts, defaultFactsBound } from './facts.ts';

const codeOf = (facts: unknown) => {
  try {
    boundedFacts(facts, defaultFactsBound);
    return 'ok';
  } catch (error) {
    return (error as MusterError).code;
  }
};

test('facts within 16 KiB, 8 levels and 1,000 keys pass as their JSON', () => {
  const facts = { cpu: { model: 'EPYC', flags: ['avx2'] }, memory: { dimms: [{ slot: 'A1', size_gb: 64 }] } };
  assert.equal(boundedFacts(facts, defaultFactsBound), JSON.stringify(facts));
});

test('too large is 413, too deep or too many keys is 400', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 9; i++) deep = { d: deep };
  assert.deepEqual(
    [
      codeOf({ blob: 'x'.repeat(16 * 1024) }),
      codeOf(deep),
      codeOf(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [i, 0]))),
      codeOf({ list: Array.from({ length: 1001 }, () => 0) }),
    ],
    ['payload_too_large', 'validation_failed', 'validation_failed', 'validation_failed'],
  );
  assert.ok(new MusterError('payload_too_large', '').status === 413);
});
