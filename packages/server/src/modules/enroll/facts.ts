import { MusterError } from '@muster/contract';

/** How much inventory one machine may report; the rest of the request is refused, nothing is stored. */
export interface FactsBound {
  maxBytes: number;
  maxDepth: number;
  maxKeys: number;
}

export const defaultFactsBound: FactsBound = { maxBytes: 16 * 1024, maxDepth: 8, maxKeys: 1000 };

/** Serialises facts once they are within bounds: 413 when too large, 400 when too deep or with too many keys. */
export function boundedFacts(facts: unknown, bound: FactsBound): string {
  const text = JSON.stringify(facts);
  const bytes = Buffer.byteLength(text);
  if (bytes > bound.maxBytes) {
    throw new MusterError('payload_too_large', `hardware is ${bytes} bytes of JSON; at most ${bound.maxBytes} are kept`, {
      errors: [{ path: '/hardware', message: `more than ${bound.maxBytes} bytes` }],
    });
  }
  let keys = 0;
  const walk = (value: unknown, depth: number): void => {
    if (value === null || typeof value !== 'object') return;
    if (depth > bound.maxDepth) {
      throw new MusterError('validation_failed', `hardware nests deeper than ${bound.maxDepth} levels`, {
        errors: [{ path: '/hardware', message: `deeper than ${bound.maxDepth} levels` }],
      });
    }
    const children = Array.isArray(value) ? value : Object.values(value);
    keys += children.length;
    if (keys > bound.maxKeys) {
      throw new MusterError('validation_failed', `hardware has more than ${bound.maxKeys} keys and items`, {
        errors: [{ path: '/hardware', message: `more than ${bound.maxKeys} keys and items` }],
      });
    }
    for (const child of children) walk(child, depth + 1);
  };
  walk(facts, 1);
  return text;
}
