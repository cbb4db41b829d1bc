import { createHash } from 'node:crypto';
import { MusterError } from '@muster/contract';
import { Liquid, type Template } from 'liquidjs';

/** Output larger than this is refused: boot files rendered per machine are config files, not images. */
export const maxRenderedBytes = 1024 * 1024;

const engine = new Liquid({
  // Templates get no file system at all: an empty in-memory one stands in for the server's files, so
  // include, render and layout could find nothing even if the tags below were not refused.
  templates: {},
  relativeReference: false,
  strictFilters: true,
  ownPropertyOnly: true,
  // Bounds on parse size, render time (ms) and memory, so a template cannot stall the server.
  parseLimit: 1024 * 1024,
  renderLimit: 1000,
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

function parse(source: string): Template[] {
  const key = createHash('sha256').update(source).digest('hex');
  let templates = parsed.get(key);
  if (!templates) {
    templates = engine.parse(source);
    if (parsed.size >= maxCached) parsed.delete(parsed.keys().next().value as string);
    parsed.set(key, templates);
  }
  return templates;
}

/** Renders a Liquid template with `context`; a template error names the template, never a server path. */
export async function renderTemplate(name: string, source: string, context: Record<string, unknown>): Promise<Buffer> {
  let text: string;
  try {
    text = await engine.render(parse(source), context);
  } catch (error) {
    throw new MusterError('validation_failed', `Template ${name} does not render: ${(error as Error).message.split('\n')[0]}`);
  }
  const bytes = Buffer.from(text);
  if (bytes.length > maxRenderedBytes)
    throw new MusterError('payload_too_large', `Template ${name} renders ${bytes.length} bytes; at most ${maxRenderedBytes}`);
  return bytes;
}

/** Checks that a template parses, for the moment it is added rather than the moment a machine boots. */
export function checkTemplate(name: string, source: string): void {
  try {
    parse(source);
  } catch (error) {
    throw new MusterError('validation_failed', `Template ${name} does not parse: ${(error as Error).message.split('\n')[0]}`, {
      errors: [{ path: `/files/${name}`, message: 'Liquid syntax error' }],
    });
  }
}
