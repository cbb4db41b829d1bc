/** What to send for a GET: the whole file, one byte range of it, or a 416. */
export type RangeAnswer = { kind: 'whole' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const whole: RangeAnswer = { kind: 'whole' };

/**
 * Reads a Range header against `size` bytes (RFC 9110, section 14.2): `bytes=a-b`, `bytes=a-` and `bytes=-n`
 * give one range. A header that is malformed, names another unit or asks for several ranges is ignored
 * and the whole file is sent, as the RFC allows; a range that starts past the end cannot be satisfied.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  const match = header === undefined ? null : /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return whole;
  const specs = match[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return whole;
  const spec = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0]);
  if (!spec || (spec[1] === '' && spec[2] === '')) return whole;
  if (spec[1] === '') {
    const suffix = Number(spec[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? Number.POSITIVE_INFINITY : Number(spec[2]);
  if (last < start) return whole;
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}

function entityTags(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
}

/** If-None-Match: true when it is `*` or lists `etag`, compared weakly (a W/ prefix is ignored). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return entityTags(header).some((tag) => tag === '*' || tag.replace(/^W\//, '') === etag);
}

/**
 * If-Range: the range may be served only when the validator is this ETag, compared strongly. A date never
 * matches, as no Last-Modified is sent; the whole file is sent instead.
 */
export function rangeStillValid(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}
