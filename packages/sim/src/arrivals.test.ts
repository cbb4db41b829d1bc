import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loopbackSource, runArrivals, timeSummary } from './arrivals.ts';

const fallback = {
  notStarted: (i: number) => `not started ${i}`,
  crashed: (i: number, e: unknown) => `crashed ${i}: ${(e as Error).message}`,
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runArrivals', () => {
  test('never runs more devices at once than the concurrency bound, and returns results in device order', async () => {
    let running = 0;
    let most = 0;
    const results = await runArrivals(
      { count: 12, arrivalMs: 0, concurrency: 3, deadlineMs: 10_000 },
      async (index) => {
        most = Math.max(most, ++running);
        await pause(5 + (index % 3));
        running--;
        return `done ${index}`;
      },
      fallback,
    );
    assert.equal(most, 3);
    assert.deepEqual(
      results,
      Array.from({ length: 12 }, (_, i) => `done ${i}`),
    );
  });

  test('arrivals are spread in order over the arrival time', async () => {
    const started: number[] = [];
    await runArrivals(
      { count: 5, arrivalMs: 100, concurrency: 5, deadlineMs: 10_000 },
      async (index) => {
        started.push(index);
        return `done ${index}`;
      },
      fallback,
    );
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
  });

  test('at the deadline running devices are told to stop and waiting ones never start', async () => {
    const results = await runArrivals(
      { count: 4, arrivalMs: 0, concurrency: 2, deadlineMs: 50 },
      (index, signal) => new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve(`stopped ${index}`))),
      fallback,
    );
    assert.deepEqual(results, ['stopped 0', 'stopped 1', 'not started 2', 'not started 3']);
  });

  test('a boot that throws is reported, the others go on', async () => {
    const results = await runArrivals(
      { count: 3, arrivalMs: 0, concurrency: 3, deadlineMs: 1000 },
      async (index) => {
        if (index === 1) throw new Error('boom');
        return `done ${index}`;
      },
      fallback,
    );
    assert.deepEqual(results, ['done 0', 'crashed 1: boom', 'done 2']);
  });
});

describe('summaries and addresses', () => {
  test('median, 95th percentile (nearest rank) and maximum, rounded', () => {
    assert.deepEqual(timeSummary([]), { median: 0, p95: 0, max: 0 });
    assert.deepEqual(timeSummary([5.4]), { median: 5, p95: 5, max: 5 });
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.deepEqual(timeSummary(hundred), { median: 50, p95: 95, max: 100 });
  });

  test('each device number has its own loopback address', () => {
    assert.deepEqual([1, 255, 256, 0x10000, 0x5e000001].map(loopbackSource), [
      '127.1.0.1',
      '127.1.0.255',
      '127.1.1.0',
      '127.2.0.0',
      '127.1.0.1',
    ]);
  });
});
