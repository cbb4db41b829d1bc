import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canTransition, machineStates, transitions } from './lifecycle.ts';

test('every state appears in the transition table and only targets known states', () => {
  assert.deepEqual(Object.keys(transitions).sort(), [...machineStates].sort());
  for (const targets of Object.values(transitions)) for (const to of targets) assert.ok(machineStates.includes(to));
});

test('the lifecycle of DESIGN.md: the happy path, failure, reprovision and retirement', () => {
  const path = ['discovered', 'enrolled', 'configured', 'building', 'ready', 'provisioning', 'provisioned'] as const;
  for (let i = 1; i < path.length; i++) assert.ok(canTransition(path[i - 1], path[i]), `${path[i - 1]} → ${path[i]}`);
  assert.ok(canTransition('building', 'failed'));
  assert.ok(canTransition('provisioning', 'failed'));
  assert.ok(canTransition('provisioned', 'ready'));
  assert.ok(canTransition('provisioned', 'configured'));
  for (const state of machineStates) if (state !== 'retired') assert.ok(canTransition(state, 'retired'), `${state} → retired`);
  assert.equal(canTransition('enrolled', 'provisioned'), false);
  assert.equal(canTransition('discovered', 'ready'), false);
});
