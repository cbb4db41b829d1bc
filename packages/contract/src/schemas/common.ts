import { type Static, type TSchema, Type } from 'typebox';

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 time, UTC' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable error code' }),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    errors: Type.Array(Type.Object({ path: Type.String(), message: Type.String() })),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);
export type Problem = Static<typeof Problem>;

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Page size (at most 500)' })),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'next_cursor from the previous page' })),
  total: Type.Optional(Type.Boolean({ description: 'Also count all matching items' })),
};

export function Page<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next page; null on the last' }),
    total: Type.Optional(Type.Integer({ description: 'Present when total=true was asked' })),
  });
}

export interface PageResult<T> {
  items: T[];
  next_cursor: string | null;
  total?: number;
}

export const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200, description: 'An id, or for machines an identifier such as serial:ABC123' }),
});

// Control characters (C0, DEL, C1), bidirectional controls and invisible format characters: in a name they make
// it show as something else (U+202E reverses what follows), and NUL cuts it short in C libraries and paths.
const hidden = '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff';

/** One line shown to people or used in a path: no control, bidirectional or invisible characters. */
export function PlainText(options: { minLength?: number; maxLength: number; description?: string }) {
  return Type.String({ ...options, pattern: `^[^${hidden}]*$` });
}

/** Free text that may span lines (descriptions, reasons): tab and line breaks, but no other control characters. */
export function ProseText(options: { maxLength: number; description?: string }) {
  return Type.String({ ...options, pattern: `^[^${hidden.replace('\\u0000-\\u001f', '\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f')}]*$` });
}

/** A host name as DNS has it: letters, digits, hyphens and dots (and underscores, which some fleets use). */
export const Hostname = Type.String({
  maxLength: 253,
  pattern: '^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$',
  description: 'Host name: labels of letters, digits, hyphens, separated by dots',
});

// Keys that do not match are a 400, never dropped: additionalProperties false beside the pattern.
export const Labels = Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$' }), PlainText({ maxLength: 256 }), {
  maxProperties: 64,
  additionalProperties: false,
  description: 'Key/value labels',
});
