import { createHash } from 'node:crypto';
import { Liquid, type Template } from 'liquidjs';

// The Liquid sandbox, one copy per thread: the render threads render with it (worker.ts), the main thread only
// parses with it, to check a template when it is saved (render.ts).

/** Output larger than this is refused: boot files rendered per machine are config files, not images. */
export const maxRenderedBytes = 1024 * 1024;

const engine = new Liquid({
  // Templates get no file system at all: an empty in-memory one stands in for the server's files, so
  // include, render and layout could find nothing even if the tags below were not refused.
  templates: {},
  relativeReference: false,
  strictFilters: true,
  ownPropertyOnly: true,
  // Bounds on parse size and memory; the render time is given per render (the time limit setting), and the
  // render thread is ended when a render outlives it all the same.
  parseLimit: 1024 * 1024,
  memoryLimit: 16 * 1024 * 1024,
  cache: false,
});

// An operator's template is public output (iPXE scripts, Pi boot files): the tags that read other files are
// refused when the template is parsed, so a template that uses one is refused when it is saved.
for (const tag of ['include', 'render', 'layout']) {
  engine.registerTag(tag, {
    parse() {
      throw new Error(`the ${tag} tag is not available: templates have no files to read`);
    },
    *render() {},
  });
}

const parsed = new Map<string, Template[]>();
const maxCached = 512;

/** The parsed template, from a cache by the source's hash. Throws Liquid's error when it does not parse. */
export function parseTemplate(source: string): Template[] {
  const key = createHash('sha256').update(source).digest('hex');
  let templates = parsed.get(key);
  if (!templates) {
    templates = engine.parse(source);
    if (parsed.size >= maxCached) parsed.delete(parsed.keys().next().value as string);
    parsed.set(key, templates);
  }
  return templates;
}

/** Renders in this thread, Liquid's own time limit at `renderLimitMs`. */
export function renderParsed(templates: Template[], context: Record<string, unknown>, renderLimitMs: number): Promise<string> {
  return engine.render(templates, context, { renderLimit: renderLimitMs });
}

/** Liquid's words when its own render time limit ends a render. */
export function isRenderLimit(error: unknown): boolean {
  return error instanceof Error && error.message.includes('template render limit exceeded');
}

/** The words for a render stopped at its time limit, the same whether Liquid or the pool stopped it. */
export function timeoutDetail(name: string, limitMs: number): string {
  return `Template ${name} did not finish rendering within ${limitMs} ms (the render time limit)`;
}
