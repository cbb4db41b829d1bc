import { MusterError, type PageResult } from '@muster/contract';

export const defaultPageSize = 50;

export function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number): unknown[] {
  try {
    const values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(values) && values.length === arity) return values;
  } catch {}
  throw new MusterError('validation_failed', 'The cursor is not one this list returned', {
    errors: [{ path: '/cursor', message: 'unknown cursor' }],
  });
}

/** Rows were fetched with limit + 1: the extra row only says that there is a next page. */
export function finishPage<R, T>(rows: R[], limit: number, cursorOf: (row: R) => unknown[], map: (row: R) => T): PageResult<T> {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), next_cursor: more ? encodeCursor(cursorOf(page[page.length - 1])) : null };
}
