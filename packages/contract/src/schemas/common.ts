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

export const Labels = Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$' }), Type.String({ maxLength: 256 }), {
  maxProperties: 64,
  description: 'Key/value labels',
});
