import { type Static, Type } from 'typebox';
import { PageQuery, Timestamp } from './common.ts';

export const Event = Type.Object({
  id: Type.Integer({ description: 'Increasing; usable as Last-Event-ID' }),
  type: Type.String({ description: 'e.g. machine.enrolled, machine.state_changed' }),
  machine_id: Type.Union([Type.String(), Type.Null()]),
  actor: Type.String({ description: 'user:NAME, token:NAME, device, system' }),
  reason: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  created_at: Timestamp,
});
export type Event = Static<typeof Event>;

export const EventQuery = Type.Object(
  {
    ...PageQuery,
    machine: Type.Optional(Type.String({ maxLength: 200 })),
    type: Type.Optional(Type.String({ maxLength: 100, description: 'Exact type, or a prefix ending in . (machine.)' })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only events with a larger id' })),
  },
  { additionalProperties: false },
);
export type EventQuery = Static<typeof EventQuery>;
