import { type Static, Type } from 'typebox';
import { BootName } from './boot.ts';
import { PlainText, ProseText, Timestamp } from './common.ts';

// A profile (docs/profiles.md): what a machine gets, in one versioned document. Every string called a template
// is Liquid, rendered in the sandbox of platform/templates with the machine's context (docs/profiles.md lists it).

const Template = (maxLength: number, description?: string) => Type.String(description ? { maxLength, description } : { maxLength });
export const Duration = Type.String({ pattern: '^[0-9]{1,6}[smhd]$', description: 'A duration: 30s, 10m, 12h, 90d' });
export const ProfileName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Short name' });
export const ProfileNameParam = Type.Object({ name: ProfileName });
/** An admin-defined HTTP endpoint a hook may call (docs/profiles.md): profiles name it, never a URL. */
export const EndpointName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Endpoint name' });

export const ProfileFile = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      maxLength: 255,
      // Relative to the root being written; a leading / is allowed and ignored. No '..' segment, no empty one.
      pattern: '^/?(?!\\.\\.?(/|$))[A-Za-z0-9_@+,=-][A-Za-z0-9_@+,.=-]*(/(?!\\.\\.?(/|$))[A-Za-z0-9_@+,.=-]+)*$',
      description: 'Where the file goes, from the root of the machine: etc/azaion/device.conf',
    }),
    template: Template(256 * 1024, 'The content, a template'),
    mode: Type.Optional(Type.String({ pattern: '^0?[0-7]{3}$', description: 'Octal permissions; 0644 when not given' })),
    owner: Type.Optional(
      Type.String({
        pattern: '^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$|^[0-9]{1,10}(:[0-9]{1,10})?$',
        description: 'user or user:group',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ProfileFile = Static<typeof ProfileFile>;

export const keyUsages = ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'nonRepudiation'] as const;
export const extendedKeyUsages = ['clientAuth', 'serverAuth'] as const;

export const CertificatePolicy = Type.Object(
  {
    common_name: Type.Optional(Template(256, "The subject's CN; {{ hostname }} when not given")),
    dns_names: Type.Optional(Type.Array(Template(256), { maxItems: 16, description: 'DNS SANs; [{{ hostname }}] when not given' })),
    ip_addresses: Type.Optional(Type.Array(Template(256), { maxItems: 16, description: 'IP SANs' })),
    validity: Type.Optional(Duration),
    key_usages: Type.Optional(Type.Array(Type.Enum(keyUsages), { minItems: 1, uniqueItems: true })),
    extended_key_usages: Type.Optional(Type.Array(Type.Enum(extendedKeyUsages), { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false },
);
export type CertificatePolicy = Static<typeof CertificatePolicy>;

export const HookRequest = Type.Object(
  {
    method: Type.Enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const),
    path: Template(1024, "Appended to the endpoint's URL"),
    body: Type.Optional(
      Type.Record(Type.String({ maxLength: 128 }), Template(4096), {
        maxProperties: 64,
        description: 'A JSON object; each value a template',
      }),
    ),
    expect: Type.Optional(
      Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
        minItems: 1,
        description: 'Success statuses; 200, 201 and 204 when not given',
      }),
    ),
  },
  { additionalProperties: false },
);
export type HookRequest = Static<typeof HookRequest>;

export const AccountHook = Type.Object(
  {
    endpoint: EndpointName,
    create: HookRequest,
    update: Type.Optional(HookRequest),
    timeout: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type AccountHook = Static<typeof AccountHook>;

export const ProfileCheck = Type.Object(
  {
    name: PlainText({ minLength: 1, maxLength: 64 }),
    endpoint: EndpointName,
    request: HookRequest,
  },
  { additionalProperties: false },
);
export type ProfileCheck = Static<typeof ProfileCheck>;

export const ProfileSpec = Type.Object(
  {
    description: Type.Optional(ProseText({ maxLength: 4096 })),
    variables: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Template(4096), {
        maxProperties: 64,
        description: 'Named templates rendered first, in order, and given to the rest as vars.NAME',
      }),
    ),
    hostname: Type.Optional(Template(512, "The machine's host name; the fleet's NAME-N when not given")),
    boot: Type.Optional(
      Type.Object(
        {
          pi_tree: Type.Optional(BootName),
          ipxe: Type.Optional(
            Type.String({
              maxLength: 65536,
              pattern: '^#!ipxe',
              description: "The iPXE script a ready machine boots, instead of the server's ready script",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    secret: Type.Optional(
      Type.Object(
        {
          bytes: Type.Optional(Type.Integer({ minimum: 16, maximum: 64, description: 'Random bytes; 16 when not given' })),
          encoding: Type.Optional(Type.Enum(['hex', 'base64url'] as const)),
        },
        { additionalProperties: false, description: 'The machine secret made once per machine, {{ secret }} in templates' },
      ),
    ),
    files: Type.Optional(Type.Array(ProfileFile, { maxItems: 64 })),
    certificate: Type.Optional(CertificatePolicy),
    account: Type.Optional(AccountHook),
    checks: Type.Optional(Type.Array(ProfileCheck, { maxItems: 16 })),
    agent: Type.Optional(
      Type.Object(
        {
          commands: Type.Optional(Type.Array(Template(4096), { maxItems: 64 })),
          services: Type.Optional(Type.Array(PlainText({ minLength: 1, maxLength: 128 }), { maxItems: 64 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ProfileSpec = Static<typeof ProfileSpec>;

export const ProfileVersion = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  spec: ProfileSpec,
  digest: Type.String({ description: 'SHA-256 of the canonical spec' }),
  actor: Type.String(),
  comment: Type.String(),
  created_at: Timestamp,
});
export type ProfileVersion = Static<typeof ProfileVersion>;

export const Profile = Type.Object({
  name: Type.String(),
  version: Type.Integer({ description: 'The current version' }),
  description: Type.String(),
  machine_count: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Profile = Static<typeof Profile>;

export const ProfileApply = Type.Object(
  { spec: ProfileSpec, comment: Type.Optional(PlainText({ maxLength: 512 })) },
  { additionalProperties: false },
);
export type ProfileApply = Static<typeof ProfileApply>;

export const ProfileApplied = Type.Object({
  profile: Profile,
  version: ProfileVersion,
  changed: Type.Boolean({ description: 'false when the spec equals the current version (no new version)' }),
});
export type ProfileApplied = Static<typeof ProfileApplied>;

export const ProfileRollback = Type.Object(
  { version: Type.Integer({ minimum: 1 }), comment: Type.Optional(PlainText({ maxLength: 512 })) },
  { additionalProperties: false },
);

export const ProfileRollout = Type.Object(
  {
    labels: Type.Optional(Type.Record(Type.String({ maxLength: 63 }), PlainText({ maxLength: 256 }), { maxProperties: 16 })),
    dry_run: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const ProfileAssign = Type.Object(
  {
    machines: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
      minItems: 1,
      maxItems: 1000,
      description: 'Machine ids or identifiers',
    }),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'The current version when not given' })),
  },
  { additionalProperties: false },
);
export type ProfileAssign = Static<typeof ProfileAssign>;

export const ProfileRolloutResult = Type.Object({
  version: Type.Integer(),
  machines: Type.Array(
    Type.Object({ id: Type.String(), hostname: Type.Union([Type.String(), Type.Null()]), from: Type.Union([Type.Integer(), Type.Null()]) }),
  ),
  dry_run: Type.Boolean(),
});
export type ProfileRolloutResult = Static<typeof ProfileRolloutResult>;

/** One file as a machine gets it. */
export const RenderedFile = Type.Object({
  path: Type.String(),
  mode: Type.String(),
  owner: Type.String(),
  content: Type.String({ description: 'The rendered content (UTF-8)' }),
  sha256: Type.String(),
});
export type RenderedFile = Static<typeof RenderedFile>;

const explainDoors = ['pi', 'ipxe', 'enroll', 'claim'] as const;

/** A machine that does not exist yet, as a door would see it: `muster explain --facts FILE`. */
export const ExplainRequest = Type.Object(
  {
    door: Type.Optional(Type.Enum(explainDoors)),
    serial: Type.Optional(PlainText({ minLength: 1, maxLength: 128 })),
    mac: Type.Optional(PlainText({ minLength: 1, maxLength: 64 })),
    hwid: Type.Optional(PlainText({ minLength: 1, maxLength: 256 })),
    facts: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 256 })),
    labels: Type.Optional(Type.Record(Type.String({ maxLength: 63 }), PlainText({ maxLength: 256 }), { maxProperties: 64 })),
  },
  { additionalProperties: false },
);
export type ExplainRequest = Static<typeof ExplainRequest>;

export const ExplainQuery = Type.Object({ door: Type.Optional(Type.Enum(explainDoors)) }, { additionalProperties: false });

export const Explanation = Type.Object({
  machine_id: Type.Union([Type.String(), Type.Null()], { description: 'null for a machine that does not exist yet' }),
  door: Type.Enum(explainDoors),
  rules: Type.Array(
    Type.Object({
      name: Type.String(),
      priority: Type.Integer(),
      matched: Type.Boolean(),
      chosen: Type.Boolean(),
      reasons: Type.Array(Type.String(), { description: 'Why it did not match (or was not chosen); empty for the chosen rule' }),
      action: Type.String(),
      sets: Type.Record(Type.String(), Type.Unknown(), { description: 'What it sets: fleet, profile, labels, approval, pi_tree' }),
    }),
  ),
  rule: Type.Union([Type.String(), Type.Null()], { description: 'The rule that applies, if any' }),
  action: Type.String({ description: 'discover, ignore or refuse' }),
  fleet: Type.Union([Type.String(), Type.Null()]),
  labels: Type.Record(Type.String(), Type.String()),
  approval: Type.Union([Type.String(), Type.Null()]),
  profile: Type.Union([
    Type.Object({
      name: Type.String(),
      version: Type.Integer({ description: 'The version rendered: the one the machine holds, else the current one' }),
      current_version: Type.Integer(),
      from: Type.String({ description: 'machine (the version it holds) or rule' }),
    }),
    Type.Null(),
  ]),
  rendered: Type.Union([
    Type.Object({
      hostname: Type.Union([Type.String(), Type.Null()]),
      files: Type.Array(RenderedFile),
      certificate: Type.Record(Type.String(), Type.Unknown()),
      agent: Type.Object({ commands: Type.Array(Type.String()), services: Type.Array(Type.String()) }),
      boot: Type.Record(Type.String(), Type.Unknown()),
    }),
    Type.Null(),
  ]),
  errors: Type.Array(Type.String(), { description: 'What would fail: a template that does not render' }),
});
export type Explanation = Static<typeof Explanation>;
