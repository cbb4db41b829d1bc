import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Admissible, minActive, Scheduler } from './schedule.ts';

/** A scheduler on a clock the test moves, and a log of what it decided. */
function setup() {
  const clock = { now: 0 };
  const scheduler = new Scheduler({ now: () => clock.now, useTimer: false });
  const log: string[] = [];
  const item = (name: string, o: { rank?: number; remaining?: number; requestedAt?: number } = {}) => {
    const requestedAt = o.requestedAt ?? clock.now;
    const transfer: Admissible & { remaining: number } = {
      rank: o.rank ?? requestedAt,
      giveUpAt: requestedAt + 30_000,
      limitMs: 30_000,
      remaining: o.remaining ?? 8_000_000,
      admit: () => log.push(`admit ${name}`),
      refuse: () => log.push(`refuse ${name}`),
    };
    return transfer;
  };
  /** `bytes` served over `ms`, sampled as the timer would every 100 ms. */
  const serve = (bytes: number, ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      scheduler.served((bytes * 100) / ms);
      clock.now += 100;
      scheduler.tick();
    }
  };
  return { clock, scheduler, log, item, serve };
}

test(`the first ${minActive} are admitted at once, before any throughput is measured; the next waits`, () => {
  const { scheduler, log, item } = setup();
  for (let i = 1; i <= minActive + 1; i++) scheduler.wait(item(`t${i}`));
  assert.deepEqual(log, ['admit t1', 'admit t2', 'admit t3', 'admit t4']);
  assert.deepEqual([scheduler.active, scheduler.waiting], [minActive, 1]);
});

test('past the minimum, one is admitted only while what is admitted drains within a tenth of the limit', () => {
  const { scheduler, log, item, serve } = setup();
  const running = Array.from({ length: minActive }, (_, i) => item(`t${i + 1}`, { remaining: 2_000_000 }));
  for (const transfer of running) scheduler.wait(transfer);
  const next = item('t5', { remaining: 2_000_000 });
  scheduler.wait(next);
  // 2 MB/s: the 8 MB admitted take 4 s, with t5 5 s: more than 3 s, so t5 waits.
  for (const transfer of running) transfer.remaining = 1_500_000;
  serve(4_000_000, 2000);
  assert.equal(scheduler.rate(), 2000);
  assert.deepEqual(log.slice(minActive), []);
  // 1 MB left of each: 4 MB, with t5 6 MB, 3 s: admitted at the next look.
  for (const transfer of running) transfer.remaining = 1_000_000;
  scheduler.tick();
  assert.deepEqual(log.slice(minActive), ['admit t5']);
});

test('while one admitted falls behind its client at its own pace, no more is admitted, however fast the thread was', () => {
  const { scheduler, log, item, serve } = setup();
  const running = Array.from({ length: minActive }, (_, i) => item(`t${i + 1}`, { remaining: 1_000_000 }));
  for (const transfer of running) scheduler.wait(transfer);
  // The thread served 20 MB/s, but t1 got 10 kB in 2 s: at that pace its 990 kB need more than its client's limit.
  running[0].remaining = 990_000;
  for (const transfer of running.slice(1)) transfer.remaining = 1000;
  serve(40_000_000, 2000);
  scheduler.wait(item('t5', { remaining: 1_000_000 }));
  assert.deepEqual(log.slice(minActive), []);
  scheduler.leave(running[0]);
  assert.deepEqual(log.slice(minActive), ['admit t5']);
});

test('what waits is admitted by when its client began to boot, then by when it asked; not by when it asked alone', () => {
  const { clock, scheduler, log, item } = setup();
  const running = Array.from({ length: minActive }, (_, i) => item(`t${i + 1}`));
  for (const transfer of running) scheduler.wait(transfer);
  clock.now = 1000;
  scheduler.wait(item('fresh Pi, start4.elf', { rank: 900 }));
  clock.now = 2000;
  scheduler.wait(item('early Pi, kernel', { rank: 0 }));
  scheduler.wait(item('early Pi, initramfs', { rank: 0, requestedAt: 1500 }));
  for (const transfer of running.slice(0, 3)) scheduler.leave(transfer);
  assert.deepEqual(log.slice(minActive), ['admit early Pi, initramfs', 'admit early Pi, kernel', 'admit fresh Pi, start4.elf']);
});

test("one whose client's time has run out while it waited is refused, and the next is admitted in its place", () => {
  const { clock, scheduler, log, item } = setup();
  const running = Array.from({ length: minActive }, (_, i) => item(`t${i + 1}`));
  for (const transfer of running) scheduler.wait(transfer);
  scheduler.wait(item('late'));
  clock.now = 20_000;
  scheduler.wait(item('later'));
  clock.now = 30_000;
  scheduler.tick();
  assert.deepEqual(log.slice(minActive), ['refuse late']);
  scheduler.leave(running[0]);
  assert.deepEqual(log.slice(minActive), ['refuse late', 'admit later']);
  assert.deepEqual([scheduler.active, scheduler.waiting], [minActive, 0]);
});

test('one that even the whole measured throughput could not bring in time is refused at once', () => {
  const { clock, scheduler, log, item, serve } = setup();
  for (let i = 1; i <= minActive; i++) scheduler.wait(item(`t${i}`, { remaining: 100_000 }));
  clock.now = 5000;
  // 8 MB at 0.5 MB/s takes 16 s; its client has 30 s from 0, so 15 s by the time it asks (t = 15 s).
  scheduler.wait(item('kernel', { requestedAt: -10_000 }));
  serve(1_000_000, 2000);
  assert.deepEqual(log.slice(minActive), ['refuse kernel']);
});

test('a transfer that ends while it waits leaves no trace; one that ends while admitted makes room', () => {
  const { scheduler, log, item } = setup();
  const running = Array.from({ length: minActive }, (_, i) => item(`t${i + 1}`));
  for (const transfer of running) scheduler.wait(transfer);
  const gone = item('gone');
  scheduler.wait(gone);
  scheduler.wait(item('next'));
  scheduler.leave(gone);
  scheduler.leave(running[1]);
  assert.deepEqual(log.slice(minActive), ['admit next']);
  assert.deepEqual([scheduler.active, scheduler.waiting], [minActive, 0]);
});
