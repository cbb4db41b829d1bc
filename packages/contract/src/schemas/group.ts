import { type Static, Type } from 'typebox';
import { ProseText, Timestamp } from './common.ts';

export const Group = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  tags: Type.Array(Type.String()),
  machine_count: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Group = Static<typeof Group>;

const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64, uniqueItems: true });

export const GroupCreate = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    description: Type.Optional(ProseText({ maxLength: 4096 })),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);
export type GroupCreate = Static<typeof GroupCreate>;

export const GroupUpdate = Type.Object(
  { description: Type.Optional(ProseText({ maxLength: 4096 })), tags: Type.Optional(Tags) },
  { additionalProperties: false, minProperties: 1 },
);
export type GroupUpdate = Static<typeof GroupUpdate>;

export const MembershipParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200 }),
  machineId: Type.String({ minLength: 1, maxLength: 200 }),
});
