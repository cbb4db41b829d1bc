import { type Static, Type } from 'typebox';
import { piSerialSource } from '../identifiers.ts';
import { ArtifactSha256 } from './artifact.ts';
import { Labels, PageQuery, PlainText, Timestamp } from './common.ts';
import { MachineStateSchema } from './machine.ts';

/** Names of trees and rules: short, safe in URLs and on the command line. */
export const BootName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Short name' });
export const BootNameParam = Type.Object({ name: BootName });

/** A Pi serial: 8 hex digits as in its TFTP paths, or all 16; stored as the 8 (normalizePiSerial). */
export const PiSerial = Type.String({
  pattern: `^${piSerialSource}$`,
  description:
    'Raspberry Pi serial: 8 hex digits as in its TFTP path, or all 16 as /proc/cpuinfo shows them; kept as the last 8, lower-case',
});

export const bootDoors = ['pi', 'ipxe', 'tftp', 'http'] as const;
export type BootDoor = (typeof bootDoors)[number];
export const ruleDoors = ['any', 'pi', 'ipxe', 'enroll', 'claim'] as const;
export const ruleApprovals = ['auto', 'pending'] as const;
export const ruleActions = ['discover', 'ignore', 'refuse'] as const;
export type RuleAction = (typeof ruleActions)[number];

export const PiTreeFile = Type.Object(
  {
    path: PlainText({ minLength: 1, maxLength: 255, description: 'Path inside the serial directory, without .liquid' }),
    sha256: ArtifactSha256,
    size: Type.Integer({ minimum: 0 }),
    template: Type.Boolean({ description: 'Rendered per machine with Liquid (the file was NAME.liquid)' }),
  },
  { additionalProperties: false },
);
export type PiTreeFile = Static<typeof PiTreeFile>;

export const PiTree = Type.Object({
  name: Type.String(),
  files: Type.Array(PiTreeFile),
  serial_pattern: Type.Union([Type.String(), Type.Null()], { description: 'Glob of serials its rule sends here, if any' }),
  machine_count: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type PiTree = Static<typeof PiTree>;

export const PiTreePut = Type.Object(
  {
    files: Type.Array(PiTreeFile, { minItems: 1, maxItems: 10000 }),
    serial_pattern: Type.Optional(Type.Union([PlainText({ minLength: 1, maxLength: 128 }), Type.Null()])),
  },
  { additionalProperties: false },
);
export type PiTreePut = Static<typeof PiTreePut>;

export const PiProvision = Type.Object({ serial: PiSerial, tree: Type.Optional(BootName) }, { additionalProperties: false });
export type PiProvision = Static<typeof PiProvision>;

export const PiMachine = Type.Object({
  serial: Type.String(),
  machine_id: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  state: MachineStateSchema,
  tree: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
  last_seen_at: Type.Union([Timestamp, Type.Null()]),
});
export type PiMachine = Static<typeof PiMachine>;

export const PiProvisionResult = Type.Object({ machine: PiMachine, tree: Type.String(), created: Type.Boolean() });
export type PiProvisionResult = Static<typeof PiProvisionResult>;

export const PiSerialFiles = Type.Object({
  serial: Type.String(),
  machine_id: Type.Union([Type.String(), Type.Null()], { description: 'null when the serial is not known yet' }),
  tree: Type.String(),
  rule: Type.Union([Type.String(), Type.Null()], { description: 'The rule that chose the tree, for an unseen serial' }),
  files: Type.Array(PiTreeFile, { description: 'For templates, sha256 and size are of the bytes this serial gets' }),
});
export type PiSerialFiles = Static<typeof PiSerialFiles>;

export const Rule = Type.Object({
  name: Type.String(),
  priority: Type.Integer({ description: 'Lower runs first' }),
  door: Type.Enum(ruleDoors, { description: 'Front door it applies to' }),
  serial_pattern: Type.Union([Type.String(), Type.Null()], { description: 'Glob on the serial (* ? [a-f])' }),
  mac_prefix: Type.Union([Type.String(), Type.Null()], { description: 'MAC prefix, e.g. an OUI dc:a6:32' }),
  action: Type.Enum(ruleActions, { description: 'discover: create the machine; ignore: answer not-found; refuse: answer an error' }),
  pi_tree: Type.Union([Type.String(), Type.Null()]),
  labels: Labels,
  facts: Type.Record(Type.String(), Type.String(), { description: 'Fact path → glob, or a comparison such as >=8' }),
  match_labels: Type.Record(Type.String(), Type.String(), {
    description: "Label → glob, on the labels the door gives (an enrollment token's)",
  }),
  fleet: Type.Union([Type.String(), Type.Null()], { description: 'Fleet the machine joins' }),
  profile: Type.Union([Type.String(), Type.Null()], { description: 'Profile the machine gets' }),
  approval: Type.Union([Type.Enum(ruleApprovals), Type.Null()], { description: 'Claims: approved at once, or held for an operator' }),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Rule = Static<typeof Rule>;

export const RulePut = Type.Object(
  {
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })),
    door: Type.Optional(Type.Enum(ruleDoors)),
    serial_pattern: Type.Optional(Type.Union([PlainText({ minLength: 1, maxLength: 128 }), Type.Null()])),
    mac_prefix: Type.Optional(Type.Union([Type.String({ pattern: '^[0-9a-fA-F]{2}([:-]?[0-9a-fA-F]{2}){0,5}$' }), Type.Null()])),
    action: Type.Enum(ruleActions),
    pi_tree: Type.Optional(Type.Union([BootName, Type.Null()])),
    labels: Type.Optional(Labels),
    facts: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}(\\.[A-Za-z0-9_-]{1,64}){0,7}$' }),
        PlainText({ minLength: 1, maxLength: 128 }),
        {
          maxProperties: 16,
          additionalProperties: false,
          description: 'Fact path (cpu.architecture) → glob (aarch64, Jetson*) or comparison (>=8)',
        },
      ),
    ),
    match_labels: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$' }), PlainText({ minLength: 1, maxLength: 128 }), {
        maxProperties: 16,
        additionalProperties: false,
      }),
    ),
    fleet: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    profile: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    approval: Type.Optional(Type.Union([Type.Enum(ruleApprovals), Type.Null()])),
  },
  { additionalProperties: false },
);
export type RulePut = Static<typeof RulePut>;

export const bootRequestStatuses = ['ok', 'not_found', 'refused', 'aborted', 'timeout', 'error'] as const;

export const BootRequest = Type.Object({
  at: Timestamp,
  door: Type.Enum(bootDoors),
  path: Type.String(),
  status: Type.Enum(bootRequestStatuses),
  bytes: Type.Integer(),
  duration_ms: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  count: Type.Integer({ description: 'How many times this same request came in a row (repeats are kept as one)' }),
  last_at: Timestamp,
});
export type BootRequest = Static<typeof BootRequest>;

const bootSessionFields = {
  id: Type.String(),
  machine_id: Type.String(),
  door: Type.Enum(bootDoors, { description: 'The door of its first request' }),
  client: Type.String({ description: 'Address the requests came from' }),
  started_at: Timestamp,
  last_at: Timestamp,
  requests: Type.Integer(),
  bytes: Type.Integer(),
  errors: Type.Integer(),
};
export const BootSession = Type.Object(bootSessionFields);
export type BootSession = Static<typeof BootSession>;

export const BootSessionDetail = Type.Object({ ...bootSessionFields, timeline: Type.Array(BootRequest) });
export type BootSessionDetail = Static<typeof BootSessionDetail>;

export const BootSessionQuery = Type.Object(PageQuery, { additionalProperties: false });

export const bootScriptNames = ['registration', 'ready'] as const;
export const BootScript = Type.Object({
  name: Type.Enum(bootScriptNames),
  body: Type.String({ description: 'Liquid template of an iPXE script' }),
  builtin: Type.Boolean({ description: 'True while no script was set: the built-in one is used' }),
  updated_at: Type.Union([Timestamp, Type.Null()]),
});
export type BootScript = Static<typeof BootScript>;
export const BootScriptPut = Type.Object(
  { body: Type.String({ minLength: 1, maxLength: 65536, pattern: '^#!ipxe' }) },
  { additionalProperties: false },
);

/**
 * What the chain script makes iPXE tell of itself when it asks /ipxe: each query name and the iPXE setting it
 * expands. Text settings are URI-encoded, for spaces in product names.
 */
export const ipxeSettings = {
  mac: 'net0/mac',
  uuid: 'uuid',
  serial: 'serial:uristring',
  asset: 'asset:uristring',
  manufacturer: 'manufacturer:uristring',
  product: 'product:uristring',
  buildarch: 'buildarch',
  platform: 'platform',
} as const;
export type IpxeParams = Partial<Record<keyof typeof ipxeSettings, string>>;

/** The /ipxe query: those settings. Other keys (a custom script's) are accepted and dropped, neither read nor kept. */
export const IpxeQuery = Type.Object(
  Object.fromEntries(Object.keys(ipxeSettings).map((name) => [name, Type.Optional(Type.String({ maxLength: 256 }))])),
  { additionalProperties: true, description: 'Settings other than these are dropped: neither read nor kept in the boot timeline' },
);
