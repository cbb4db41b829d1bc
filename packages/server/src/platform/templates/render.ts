import { availableParallelism } from 'node:os';
import { MusterError } from '@muster/contract';
import { maxRenderedBytes, parseTemplate } from './engine.ts';
import { type RenderLimits, RenderPool, type RenderStats } from './pool.ts';

export { maxRenderedBytes };

/** The limits when no server has set them (the defaults of the render_* settings). */
export const defaultRenderLimits: RenderLimits = { threads: Math.min(availableParallelism(), 2), timeoutMs: 1000, maxQueued: 1024 };

// One pool per process, as the Liquid engine was: every caller renders through it without being handed it.
let pool: RenderPool | null = null;
let limits: RenderLimits = defaultRenderLimits;
let holders = 0;

function currentPool(): RenderPool {
  pool ??= new RenderPool(limits);
  return pool;
}

/**
 * Renders a Liquid template with `context` (plain data) on a render thread; a template error names the
 * template, never a server path. Fails with render_timeout past the time limit and render_busy when too many
 * renders wait already.
 */
export function renderTemplate(name: string, source: string, context: Record<string, unknown>): Promise<Buffer> {
  const plain = plainOutput(source, context);
  if (plain !== null && Buffer.byteLength(plain) <= maxRenderedBytes) return Promise.resolve(Buffer.from(plain));
  return currentPool().render({ name, source, context });
}

const outputTag = /\{\{\s*([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\s*\}\}/g;

/**
 * What a template renders to when no render is needed: text whose only markup is `{{ a.b }}` outputs naming
 * strings, numbers, booleans or nothing (a device.conf of names and the secret, the default certificate name
 * `{{ hostname }}`). Substituting own properties costs no more than reading the template once, so it needs no
 * thread; anything else (filters, tags, whitespace control, objects) is null and renders on a thread.
 */
function plainOutput(source: string, context: Record<string, unknown>): string | null {
  if (/\{[{%]/.test(source.replace(outputTag, ''))) return null;
  let failed = false;
  let length = source.length;
  // A value is printed as it is, markup and all, as Liquid prints it; past the output bound the thread refuses it.
  const out = source.replace(outputTag, (_, path: string) => {
    const value = failed ? null : lookup(context, path);
    length += value?.length ?? 0;
    if (value === null || length > maxRenderedBytes) failed = true;
    return failed ? '' : (value as string);
  });
  return failed ? null : out;
}

/** Names Liquid answers itself on any object (the number of keys, the first entry). */
const liquidNames = new Set(['size', 'first', 'last']);

/** A path's value as Liquid prints it, or null when only Liquid can tell (strings' and arrays' own names). */
function lookup(context: Record<string, unknown>, path: string): string | null {
  let value: unknown = context;
  for (const key of path.split('.')) {
    // Liquid renders a name the context lacks as nothing; strings and arrays have names of their own (size, first).
    if (value === null || value === undefined) return '';
    if (typeof value !== 'object' || Array.isArray(value) || liquidNames.has(key)) return null;
    if (!Object.hasOwn(value, key)) return '';
    value = (value as Record<string, unknown>)[key];
  }
  if (value === null || value === undefined) return '';
  if (typeof value === 'string' || typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/** Checks that a template parses, for the moment it is added rather than the moment a machine boots. */
export function checkTemplate(name: string, source: string): void {
  try {
    parseTemplate(source);
  } catch (error) {
    throw new MusterError('validation_failed', `Template ${name} does not parse: ${(error as Error).message.split('\n')[0]}`, {
      errors: [{ path: `/files/${name}`, message: 'Liquid syntax error' }],
    });
  }
}

/**
 * A server's hold on the render threads with its limits; the threads end when the last holder lets go
 * (`muster serve` stopping, or each test server of a process).
 */
export function holdRenderThreads(given: RenderLimits): { release(): Promise<void> } {
  limits = { ...given };
  pool?.configure(limits);
  holders++;
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      holders--;
      if (holders > 0 || !pool) return;
      const closing = pool;
      pool = null;
      limits = defaultRenderLimits;
      await closing.close();
    },
  };
}

/** The render threads' queue and counts, for metrics; zeros before the first render. */
export function renderStats(): RenderStats {
  return pool?.stats() ?? { queued: 0, running: 0, threads: 0, rendered: 0, failed: 0, timedOut: 0, refused: 0 };
}
