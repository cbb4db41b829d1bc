import { type Static, Type } from 'typebox';
import { identifierKinds } from '../identifiers.ts';
import { machineStates } from '../lifecycle.ts';
import { Hostname, Labels, NullableTimestamp, PageQuery, ProseText, Timestamp } from './common.ts';

export const MachineStateSchema = Type.Enum(machineStates, { description: 'Lifecycle state' });

export const IdentifierSchema = Type.Object({
  kind: Type.Enum(identifierKinds),
  value: Type.String({ minLength: 1, maxLength: 200 }),
});

export const Facts = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), {
  description: 'Inventory as reported by the machine',
});

export const Machine = Type.Object({
  id: Type.String({ description: 'Opaque id, m_ followed by a ULID' }),
  state: MachineStateSchema,
  status: MachineStateSchema,
  hostname: Type.Union([Type.String(), Type.Null()]),
  description: Type.String(),
  service_tag: Type.Union([Type.String(), Type.Null()]),
  mac_address: Type.Union([Type.String(), Type.Null()]),
  fleet: Type.Union([Type.String(), Type.Null()], { description: 'Fleet name' }),
  fleet_seq: Type.Union([Type.Integer(), Type.Null()], { description: 'Number within the fleet, never reused' }),
  profile: Type.Union([Type.String(), Type.Null()], { description: 'Profile name' }),
  profile_version: Type.Union([Type.Integer(), Type.Null()], { description: 'The version of the profile the machine got' }),
  labels: Labels,
  identifiers: Type.Array(IdentifierSchema),
  hardware: Facts,
  nixos_config: Type.String(),
  enrolled_at: NullableTimestamp,
  last_seen_at: NullableTimestamp,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Machine = Static<typeof Machine>;

export const MachineCreate = Type.Object(
  {
    identifiers: Type.Array(IdentifierSchema, { minItems: 1, maxItems: 32 }),
    hostname: Type.Optional(Hostname),
    description: Type.Optional(ProseText({ maxLength: 4096 })),
    fleet: Type.Optional(Type.String({ maxLength: 64 })),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
export type MachineCreate = Static<typeof MachineCreate>;

export const MachineUpdate = Type.Object(
  {
    hostname: Type.Optional(Type.Union([Hostname, Type.Null()])),
    description: Type.Optional(ProseText({ maxLength: 4096 })),
    nixos_config: Type.Optional(Type.String({ maxLength: 262144 })),
    fleet: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type MachineUpdate = Static<typeof MachineUpdate>;

export const TransitionRequest = Type.Object(
  {
    to: MachineStateSchema,
    reason: Type.Optional(ProseText({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type TransitionRequest = Static<typeof TransitionRequest>;

export const machineSortFields = ['id', 'created_at', 'updated_at', 'hostname', 'state', 'last_seen_at'] as const;
export type MachineSortField = (typeof machineSortFields)[number];

export const MachineListQuery = Type.Object(
  {
    ...PageQuery,
    state: Type.Optional(MachineStateSchema),
    status: Type.Optional(MachineStateSchema),
    fleet: Type.Optional(Type.String({ maxLength: 64 })),
    group: Type.Optional(Type.String({ maxLength: 200 })),
    label: Type.Optional(
      Type.Union([Type.String({ maxLength: 320 }), Type.Array(Type.String({ maxLength: 320 }), { maxItems: 16 })], {
        description: 'key=value (or key alone); repeat to require several',
      }),
    ),
    q: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Free text, case-insensitive: part of a hostname or identifier, or an id' }),
    ),
    sort: Type.Optional(Type.Enum(machineSortFields)),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
  },
  { additionalProperties: false },
);
export type MachineListQuery = Static<typeof MachineListQuery>;

export const EnrollRequest = Type.Object(
  {
    service_tag: Type.Optional(Type.String({ maxLength: 128 })),
    mac_address: Type.Optional(Type.String({ maxLength: 64 })),
    uuid: Type.Optional(Type.String({ maxLength: 64 })),
    serial: Type.Optional(Type.String({ maxLength: 128 })),
    asset_tag: Type.Optional(Type.String({ maxLength: 128 })),
    identifiers: Type.Optional(Type.Array(IdentifierSchema, { maxItems: 32 })),
    hardware: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const IdentifierAdd = Type.Object(
  { kind: IdentifierSchema.properties.kind, value: IdentifierSchema.properties.value },
  { additionalProperties: false },
);
