import assert from 'node:assert/strict';
import { test } from 'node:test';
import { artifactNameProblem } from './artifact.ts';

test('published names are relative paths', () => {
  for (const name of [
    'ipxe.efi',
    'undionly.kpxe',
    'registration/bzImage',
    'pi/4/start4.elf',
    '.hidden',
    '..dots',
    'with space',
    'é'.repeat(127),
  ]) {
    assert.equal(artifactNameProblem(name), null, name);
  }
});

test('names that climb, are absolute, have empty or dot segments, backslashes, control characters or over 255 bytes are refused', () => {
  for (const name of [
    '',
    '..',
    '.',
    '../x',
    'a/../b',
    'a/..',
    '/abs',
    'a//b',
    'a/',
    './a',
    'a/./b',
    'back\\slash',
    'tab\tx',
    'nul\u0000',
    'c1\u0085',
    'x'.repeat(256),
    'é'.repeat(128),
  ]) {
    assert.match(artifactNameProblem(name) ?? 'accepted', /is not a relative path|longer than 255 bytes/, JSON.stringify(name));
  }
});
