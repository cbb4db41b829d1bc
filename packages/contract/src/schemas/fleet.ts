import { type Static, Type } from 'typebox';
import { ProseText, Timestamp } from './common.ts';

const FleetName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
  description: 'Short name; hostnames become NAME-1, NAME-2, …',
});

export const Fleet = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  machine_count: Type.Integer(),
  next_seq: Type.Integer({ description: 'The number the next machine to join gets' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Fleet = Static<typeof Fleet>;

export const FleetCreate = Type.Object(
  { name: FleetName, description: Type.Optional(ProseText({ maxLength: 4096 })) },
  { additionalProperties: false },
);
export type FleetCreate = Static<typeof FleetCreate>;

export const FleetUpdate = Type.Object({ description: ProseText({ maxLength: 4096 }) }, { additionalProperties: false });
export type FleetUpdate = Static<typeof FleetUpdate>;
