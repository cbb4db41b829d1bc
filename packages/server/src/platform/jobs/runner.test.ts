import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendLog, backoffMs } from './runner.ts';

test('backoff doubles per attempt within ±25% jitter and stops growing at ten minutes', () => {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const expected = 1000 * 2 ** (attempt - 1);
    const delay = backoffMs(attempt, 1000);
    assert.ok(delay >= expected * 0.75 && delay <= expected * 1.25, `attempt ${attempt}: ${delay}`);
  }
  assert.ok(backoffMs(40, 1000) <= 750_000);
});

test('job logs keep their tail once they outgrow 256 KiB', () => {
  let log = '';
  for (let i = 0; i < 5000; i++) log = appendLog(log, `line ${i} ${'x'.repeat(100)}`);
  assert.ok(log.length <= 256 * 1024 + 40);
  assert.match(log, /^\[… earlier output truncated …\]\n/);
  assert.match(log, /line 4999 x+\n$/);
});
