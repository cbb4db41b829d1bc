import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BudgetExceeded, MinuteBudget } from './budget.ts';

test('a minute budget admits its allowance, reports the first refusal once, and renews after a minute', () => {
  const reports: BudgetExceeded[] = [];
  const budget = new MinuteBudget(2, (exceeded) => reports.push(exceeded));
  const at = Date.parse('2026-01-01T00:00:00Z');
  assert.deepEqual(
    [budget.admit('ipxe', at), budget.admit('pi', at + 1), budget.admit('enroll', at + 2), budget.admit('ipxe', at + 3)],
    [true, true, false, false],
  );
  assert.deepEqual(reports, [{ door: 'enroll', limit: 2, window_started_at: '2026-01-01T00:00:00.000Z' }]);
  assert.equal(budget.retryAfter(at + 30_000), 30);
  assert.equal(budget.admit('ipxe', at + 60_000), true);
});

test('a budget of 0 is unlimited', () => {
  const budget = new MinuteBudget(0, () => assert.fail('never reported'));
  assert.equal(Array.from({ length: 10_000 }, () => budget.admit('ipxe')).every(Boolean), true);
});
