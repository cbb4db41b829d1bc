import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { holdRenderThreads, renderStats, renderTemplate } from './render.ts';

const hold = holdRenderThreads({ threads: 1, timeoutMs: 2000, maxQueued: 8 });
after(() => hold.release());

const text = async (source: string, context: Record<string, unknown>) => (await renderTemplate('t', source, context)).toString();

test('plain text and a lone name of a string or number render without a thread, as Liquid would render them', async () => {
  const before = renderStats().rendered;
  const context = { hostname: 'edge-1', seq: 7, ready: true, none: null, machine: { fleet: 'edge' } };
  assert.deepEqual(
    await Promise.all([
      text('arm_64bit=1', context),
      text('{{ hostname }}', context),
      text('{{ seq }}', context),
      text('{{ ready }}', context),
      text('{{ none }}', context),
      text('{{ missing }}', context),
      text('{{ machine.fleet }}', context),
      text('HOST={{ hostname }}\nFLEET={{ machine.fleet }} #{{ seq }}\n', context),
      text('{{ braces }}', { braces: '{{ not rendered }}' }),
    ]),
    ['arm_64bit=1', 'edge-1', '7', 'true', '', '', 'edge', 'HOST=edge-1\nFLEET=edge #7\n', '{{ not rendered }}'],
  );
  assert.equal(renderStats().rendered, before, 'no thread rendered them');
});

test('filters, tags, and names of strings or arrays go to a render thread', async () => {
  const before = renderStats().rendered;
  const context = { hostname: 'edge-1', list: [1, 2] };
  assert.deepEqual(
    await Promise.all([
      text('{{ hostname | upcase }}', context),
      text('{% if hostname %}y{% endif %}', context),
      text('{{ list.first }}', context),
      text('{{- hostname }} x', context),
      text('{{ hostname.size }}', context),
    ]),
    ['EDGE-1', 'y', '1', 'edge-1 x', '6'],
  );
  assert.equal(renderStats().rendered, before + 5);
});

test('outputs that would pass the output bound are refused by the thread, never built on the main thread', async () => {
  const big = 'x'.repeat(600 * 1024);
  await assert.rejects(renderTemplate('big', '{{ a }}{{ a }}', { a: big }), { code: 'payload_too_large' });
});
