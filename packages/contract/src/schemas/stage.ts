import { type Static, Type } from 'typebox';
import { PlainText, Timestamp } from './common.ts';
import { EndpointName, ProfileName, RenderedFile } from './profile.ts';

// Image-time identity (docs/stage.md): endpoints an admin defines for hooks to call, and `muster stage`.

export const EndpointNameParam = Type.Object({ name: EndpointName });

export const EndpointPut = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      description: "Where the hooks' paths are appended: http or https, no user, password, query or fragment",
    }),
    bearer: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        pattern: '^[\\x21-\\x7e]+$',
        description: 'Sent as Authorization: Bearer …; stored sealed and never shown. Left out: the endpoint has none',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EndpointPut = Static<typeof EndpointPut>;

export const Endpoint = Type.Object({
  name: Type.String(),
  url: Type.String(),
  has_credential: Type.Boolean({ description: 'Whether a bearer token is stored (it is never shown)' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Endpoint = Static<typeof Endpoint>;

export const StageRequest = Type.Object(
  {
    serial: PlainText({ minLength: 1, maxLength: 128, description: "The machine's serial, as on its label: AZJN-0042" }),
    profile: Type.Optional(ProfileName),
    verify: Type.Optional(Type.Boolean({ description: "Run the profile's checks after the account hook" })),
    rotate_secret: Type.Optional(Type.Boolean({ description: 'Make a new machine secret instead of keeping the stored one' })),
  },
  { additionalProperties: false },
);
export type StageRequest = Static<typeof StageRequest>;

export const StageCheck = Type.Object({
  name: Type.String(),
  ok: Type.Boolean(),
  status: Type.Union([Type.Integer(), Type.Null()], { description: 'The HTTP status; null when none came (timeout, refused)' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why it failed' }),
});
export type StageCheck = Static<typeof StageCheck>;

export const StageResult = Type.Object({
  machine_id: Type.String(),
  created: Type.Boolean({ description: 'Whether this stage made the machine' }),
  serial: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  profile: Type.String(),
  profile_version: Type.Integer(),
  account: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Null()], {
    description: 'What the account hook did; null when the profile has none',
  }),
  secret: Type.Union([Type.Literal('made'), Type.Literal('kept'), Type.Literal('rotated'), Type.Null()], {
    description: 'What happened to the machine secret; null when the profile uses none',
  }),
  files: Type.Array(RenderedFile, { description: "The profile's files, rendered with the machine secret" }),
  checks: Type.Optional(Type.Array(StageCheck, { description: 'With verify' })),
});
export type StageResult = Static<typeof StageResult>;
