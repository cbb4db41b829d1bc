import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MusterError } from '@muster/contract';
import { RenderPool } from './pool.ts';

/** One output tag of long filter calls: Liquid's own time limit only looks between tags, so it cannot stop this. */
const oneLongTag = `{{ s | split: "" | sort | reverse | sort | reverse | sort | reverse | sort | join: "" | size }}`;
const letters = Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(97 + ((i * 7919) % 26))).join('');
/** Loops that Liquid's time limit stops between iterations. */
const longLoop = '{% for a in (1..100000) %}{% for b in (1..100000) %}{{ b }}{% endfor %}{% endfor %}';

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (error: MusterError) => ({ code: error.code, message: error.message, extra: error.extra }),
  );

test('renders come back to their callers, each with its own context', async () => {
  const pool = new RenderPool({ threads: 2, timeoutMs: 5000, maxQueued: 64 });
  try {
    const names = Array.from({ length: 20 }, (_, i) => `m${i}`);
    const rendered = await Promise.all(
      names.map((name) => pool.render({ name, source: '{{ who }}:{{ n | plus: 1 }}', context: { who: name, n: 1 } })),
    );
    assert.deepEqual(
      rendered.map((bytes) => bytes.toString()),
      names.map((name) => `${name}:2`),
    );
    assert.deepEqual(pool.stats(), { queued: 0, running: 0, threads: 2, rendered: 20, failed: 0, timedOut: 0, refused: 0 });
  } finally {
    await pool.close();
  }
});

test('a render past the time limit that Liquid cannot stop has its thread ended and replaced; the pool serves on', async () => {
  const pool = new RenderPool({ threads: 1, timeoutMs: 50, maxQueued: 8 });
  try {
    const slow = pool.render({ name: 'slow', source: oneLongTag, context: { s: letters } });
    const next = pool.render({ name: 'next', source: 'after {{ x }}', context: { x: 'the slow one' } });
    assert.deepEqual(await failure(slow), {
      code: 'render_timeout',
      message: 'Template slow did not finish rendering within 50 ms (the render time limit)',
      extra: {},
    });
    assert.equal((await next).toString(), 'after the slow one');
    assert.deepEqual(pool.stats(), { queued: 0, running: 0, threads: 1, rendered: 1, failed: 0, timedOut: 1, refused: 0 });
  } finally {
    await pool.close();
  }
});

test('a render Liquid stops at the time limit fails as render_timeout and its thread renders the next', async () => {
  const pool = new RenderPool({ threads: 1, timeoutMs: 100, maxQueued: 8 });
  try {
    assert.deepEqual(await failure(pool.render({ name: 'loop', source: longLoop, context: {} })), {
      code: 'render_timeout',
      message: 'Template loop did not finish rendering within 100 ms (the render time limit)',
      extra: {},
    });
    assert.equal((await pool.render({ name: 'ok', source: 'ok', context: {} })).toString(), 'ok');
  } finally {
    await pool.close();
  }
});

test('past the queue bound a render is refused at once with render_busy, before the ones waiting are done', async () => {
  const pool = new RenderPool({ threads: 1, timeoutMs: 300, maxQueued: 2 });
  try {
    await pool.render({ name: 'warm', source: 'the thread is up', context: {} });
    const order: string[] = [];
    const track = (name: string, promise: Promise<unknown>) =>
      promise.then(
        () => order.push(`${name} rendered`),
        () => order.push(`${name} failed`),
      );
    const running = track('running', pool.render({ name: 'running', source: longLoop, context: {} }));
    const waiting = [1, 2].map((n) => track(`waiting${n}`, pool.render({ name: `waiting${n}`, source: 'w', context: {} })));
    const refused = await failure(pool.render({ name: 'refused', source: 'r', context: {} }));
    order.push('refused');
    assert.deepEqual(refused, {
      code: 'render_busy',
      message: 'More than 2 templates are waiting to render; retry in a second',
      extra: { retry_after: 1 },
    });
    await Promise.all([running, ...waiting]);
    assert.deepEqual(order, ['refused', 'running failed', 'waiting1 rendered', 'waiting2 rendered']);
    assert.equal(pool.stats().refused, 1);
  } finally {
    await pool.close();
  }
});

test('template errors name the template; output over 1 MiB is refused', async () => {
  const pool = new RenderPool({ threads: 1, timeoutMs: 2000, maxQueued: 8 });
  try {
    assert.deepEqual(await failure(pool.render({ name: 'bad', source: '{{ x | no_such_filter }}', context: {} })), {
      code: 'validation_failed',
      message: 'Template bad does not render: undefined filter: no_such_filter, line:1, col:1',
      extra: {},
    });
    const big = '{% for i in (1..1100) %}{{ s }}{% endfor %}';
    assert.deepEqual(await failure(pool.render({ name: 'big', source: big, context: { s: 'x'.repeat(1024) } })), {
      code: 'payload_too_large',
      message: 'Template big renders 1126400 bytes; at most 1048576',
      extra: {},
    });
  } finally {
    await pool.close();
  }
});

test('closing fails what waits and runs, and renders nothing after', async () => {
  const pool = new RenderPool({ threads: 1, timeoutMs: 5000, maxQueued: 8 });
  const running = failure(pool.render({ name: 'running', source: longLoop, context: {} }));
  const waiting = failure(pool.render({ name: 'waiting', source: 'w', context: {} }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await pool.close();
  const stopping = { code: 'unavailable', message: 'The server is stopping; templates are not rendered', extra: {} };
  assert.deepEqual(
    [await running, await waiting, await failure(pool.render({ name: 'late', source: 'l', context: {} }))],
    [stopping, stopping, stopping],
  );
});
