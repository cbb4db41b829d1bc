import { type Static, Type } from 'typebox';
import { Labels, NullableTimestamp, PlainText, Timestamp } from './common.ts';
import { Facts, MachineStateSchema } from './machine.ts';
import { RenderedFile } from './profile.ts';

// Identity (docs/identity.md): fleet slots claimed with one-time passwords, and certificates from muster's CA.

export const SlotAllocate = Type.Object(
  { count: Type.Integer({ minimum: 1, maximum: 10_000, description: 'How many slots to add to the fleet' }) },
  { additionalProperties: false },
);
export type SlotAllocate = Static<typeof SlotAllocate>;

export const FleetSlot = Type.Object({
  id: Type.String(),
  fleet: Type.String(),
  fleet_seq: Type.Integer(),
  hostname: Type.String(),
  tunnel_port: Type.Union([Type.Integer(), Type.Null()], { description: 'Unique across fleets; null once released' }),
  state: Type.Union([Type.Literal('unclaimed'), Type.Literal('claimed'), Type.Literal('released')]),
  hwid: Type.Union([Type.String(), Type.Null()]),
  machine_id: Type.Union([Type.String(), Type.Null()]),
  claimed_at: NullableTimestamp,
  claimed_from: Type.Union([Type.String(), Type.Null()], { description: 'The address the claim came from' }),
  created_at: Timestamp,
});
export type FleetSlot = Static<typeof FleetSlot>;

/** A slot as allocation returns it, the one time its one-time password is shown. */
export const AllocatedSlot = Type.Intersect([FleetSlot, Type.Object({ otp: Type.String() })]);
export type AllocatedSlot = Static<typeof AllocatedSlot>;

export const SlotAllocation = Type.Object({ fleet: Type.String(), slots: Type.Array(AllocatedSlot) });
export type SlotAllocation = Static<typeof SlotAllocation>;

const Pem = (label: string, maxLength: number) =>
  Type.String({ maxLength, pattern: `^\\s*-----BEGIN ${label}-----`, description: `PEM ${label}` });

/**
 * Proof that a retry comes from the device that claimed (docs/identity.md): a signature, by the key of the first
 * claim's CSR, over `muster-claim-v1\n<hwid as sent>\n<time>`, with `time` within five minutes of the server's.
 */
export const ClaimProof = Type.Object(
  {
    time: Type.String({ maxLength: 40, format: 'date-time', description: 'When the device signed, RFC 3339 (UTC)' }),
    signature: Type.String({
      minLength: 16,
      maxLength: 1400,
      pattern: '^[A-Za-z0-9+/=_-]+$',
      description: 'Base64: ECDSA (DER) or RSA PKCS#1 v1.5 over SHA-256, as `openssl dgst -sha256 -sign` writes it',
    }),
  },
  { additionalProperties: false },
);
export type ClaimProof = Static<typeof ClaimProof>;

/** On a retry: proof of the claim's key; without it a retry learns only its status. */
const proofField = Type.Optional(ClaimProof);

/** What a retry without proof of possession learns: its status, nothing else. */
export const ClaimStatus = Type.Object({
  status: Type.Union([Type.Literal('approved'), Type.Literal('pending')]),
  proof_required: Type.Boolean({ description: 'true: send `proof` (a signature by the claim’s key) to receive the identity' }),
  detail: Type.String(),
  server_time: Type.String({ description: 'The server’s clock, to sign `proof.time` against' }),
});
export type ClaimStatus = Static<typeof ClaimStatus>;

export const OtpClaim = Type.Object(
  {
    fleet: PlainText({ minLength: 1, maxLength: 64, description: 'The fleet the one-time password belongs to' }),
    otp: PlainText({ minLength: 1, maxLength: 128 }),
    hwid: PlainText({ minLength: 1, maxLength: 256, description: 'The device’s hardware id; a slot is bound to one, once' }),
    csr: Type.Optional(Pem('CERTIFICATE REQUEST', 16_384)),
    ssh_public_key: Type.Optional(
      Type.String({
        maxLength: 16_384,
        pattern: '^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\\.com) [A-Za-z0-9+/=]+( [^\\n]*)?$',
      }),
    ),
    facts: Type.Optional(Facts),
    proof: proofField,
  },
  { additionalProperties: false },
);
export type OtpClaim = Static<typeof OtpClaim>;

/** What a device's profile gives it (docs/profiles.md): the version, the rendered files and what the agent runs. */
export const DeviceConfiguration = Type.Object({
  profile: Type.Optional(Type.Object({ name: Type.String(), version: Type.Integer() })),
  files: Type.Optional(Type.Array(RenderedFile)),
  agent: Type.Optional(Type.Object({ commands: Type.Array(Type.String()), services: Type.Array(Type.String()) })),
});
export type DeviceConfiguration = Static<typeof DeviceConfiguration>;

export const ClaimAnswer = Type.Object({
  status: Type.Literal('approved'),
  machine_id: Type.String(),
  hostname: Type.String(),
  fleet: Type.String(),
  fleet_seq: Type.Integer(),
  tunnel_port: Type.Integer(),
  ip_address: Type.Optional(Type.String({ description: 'From the fleet’s IP pool, when it has one' })),
  certificate: Type.Optional(Type.String({ description: 'PEM, issued from the CSR' })),
  renew_after: Type.Optional(
    Type.String({ description: 'When to renew it (POST /api/v1/device/certificate): two thirds into its validity' }),
  ),
  ca_chain: Type.Optional(Type.Array(Type.String(), { description: 'PEM, the issuing CA first' })),
  configuration: Type.Object({
    server: Type.String({ description: 'How the device reaches muster' }),
    hostname: Type.String(),
    fleet: Type.String(),
    tunnel_port: Type.Integer(),
    ...DeviceConfiguration.properties,
  }),
});
export type ClaimAnswer = Static<typeof ClaimAnswer>;

/**
 * What a device learns of itself over mutual TLS (GET /api/v1/device/self): its allocation, its certificate and
 * what its profile gives it now. Mutual TLS proves possession, so the rendered files come with the machine's
 * secret, as in its claim answer; nothing of other machines and nothing only operators see (events, inventory).
 */
export const DeviceSelf = Type.Object({
  machine_id: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  fleet: Type.Union([Type.String(), Type.Null()]),
  fleet_seq: Type.Union([Type.Integer(), Type.Null()]),
  state: MachineStateSchema,
  labels: Type.Record(Type.String(), Type.String()),
  profile: Type.Union([Type.Object({ name: Type.String(), version: Type.Integer() }), Type.Null()], {
    description: 'The profile version the machine holds; null without one',
  }),
  ip_address: Type.Union([Type.String(), Type.Null()], { description: 'From the fleet’s IP pool; null when it has none' }),
  tunnel_port: Type.Union([Type.Integer(), Type.Null()], { description: 'Of the fleet slot the machine claimed; null without one' }),
  renew_after: Timestamp,
  certificate: Type.Object(
    {
      serial: Type.String(),
      subject: Type.String(),
      not_before: Timestamp,
      not_after: Timestamp,
      revoked: Type.Boolean({ description: 'Always false here: a revoked certificate is refused with 401' }),
    },
    { description: 'The certificate presented, as muster recorded it' },
  ),
  files: Type.Array(RenderedFile, { description: 'Its profile’s files, rendered now; empty without a profile' }),
  agent: Type.Union([Type.Object({ commands: Type.Array(Type.String()), services: Type.Array(Type.String()) }), Type.Null()], {
    description: 'What its agent runs; null without a profile',
  }),
});
export type DeviceSelf = Static<typeof DeviceSelf>;

export const CaInfo = Type.Object({
  subject: Type.String(),
  fingerprint_sha256: Type.String(),
  not_before: Timestamp,
  not_after: Timestamp,
  certificate: Type.String({ description: 'PEM' }),
  chain: Type.Array(Type.String(), { description: 'PEM: this CA, then the certificates above it (an imported intermediate’s)' }),
  imported: Type.Boolean({ description: 'false while muster’s own CA issues' }),
});
export type CaInfo = Static<typeof CaInfo>;

export const CaImport = Type.Object(
  {
    certificate: Type.String({ minLength: 1, maxLength: 16_384, description: 'The intermediate CA certificate, PEM' }),
    key: Type.String({ minLength: 1, maxLength: 16_384, description: 'Its private key, PEM (PKCS#8, SEC1 or PKCS#1)' }),
    chain: Type.Optional(Type.String({ maxLength: 32_768, description: 'The certificates above it, its issuer first, PEM' })),
  },
  { additionalProperties: false },
);
export type CaImport = Static<typeof CaImport>;

export const Certificate = Type.Object({
  serial: Type.String(),
  machine_id: Type.Union([Type.String(), Type.Null()]),
  subject: Type.String(),
  not_before: Timestamp,
  not_after: Timestamp,
  renew_after: Timestamp,
  revoked_at: NullableTimestamp,
  revoke_reason: Type.Union([Type.String(), Type.Null()]),
  certificate: Type.String({ description: 'PEM' }),
});
export type Certificate = Static<typeof Certificate>;

export const CertificateRevoke = Type.Object({ reason: Type.Optional(PlainText({ maxLength: 256 })) }, { additionalProperties: false });
export type CertificateRevoke = Static<typeof CertificateRevoke>;

export const DeviceRenew = Type.Object({ csr: Pem('CERTIFICATE REQUEST', 16_384) }, { additionalProperties: false });
export type DeviceRenew = Static<typeof DeviceRenew>;

export const EnrollmentTokenCreate = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
    fleet: Type.Optional(PlainText({ minLength: 1, maxLength: 64, description: 'Machines claimed with it join this fleet' })),
    labels: Type.Optional(Labels),
    profile: Type.Optional(PlainText({ minLength: 1, maxLength: 64, description: 'Machines claimed with it get this profile' })),
    approval: Type.Optional(
      Type.Union([Type.Literal('auto'), Type.Literal('manual'), Type.Literal('rules')], {
        description:
          'manual: claims wait for an operator; auto: approved unless a rule says pending; rules (default): the matching rule decides, pending when none does',
      }),
    ),
    max_uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    expires_in: Type.Optional(Type.String({ pattern: '^[0-9]+[smhd]$', description: 'e.g. 7d' })),
  },
  { additionalProperties: false },
);
export type EnrollmentTokenCreate = Static<typeof EnrollmentTokenCreate>;

export const EnrollmentToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  fleet: Type.Union([Type.String(), Type.Null()]),
  labels: Type.Record(Type.String(), Type.String()),
  profile: Type.Union([Type.String(), Type.Null()]),
  approval: Type.Union([Type.Literal('auto'), Type.Literal('manual'), Type.Literal('rules')]),
  max_uses: Type.Union([Type.Integer(), Type.Null()]),
  uses: Type.Integer(),
  expires_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
  created_by: Type.String(),
  created_at: Timestamp,
});
export type EnrollmentToken = Static<typeof EnrollmentToken>;

export const CreatedEnrollmentToken = Type.Intersect([
  EnrollmentToken,
  Type.Object({ token: Type.String({ description: 'Shown this once' }) }),
]);
export type CreatedEnrollmentToken = Static<typeof CreatedEnrollmentToken>;

export const TokenClaim = Type.Object(
  {
    token: PlainText({ minLength: 1, maxLength: 128 }),
    hwid: PlainText({ minLength: 1, maxLength: 256 }),
    csr: Type.Optional(Pem('CERTIFICATE REQUEST', 16_384)),
    facts: Type.Optional(Facts),
    proof: proofField,
  },
  { additionalProperties: false },
);
export type TokenClaim = Static<typeof TokenClaim>;

export const TokenClaimAnswer = Type.Object({
  status: Type.Union([Type.Literal('approved'), Type.Literal('pending')]),
  machine_id: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  fleet: Type.Union([Type.String(), Type.Null()]),
  labels: Type.Record(Type.String(), Type.String()),
  ip_address: Type.Optional(Type.String({ description: 'From the fleet’s IP pool, when it has one' })),
  certificate: Type.Optional(Type.String()),
  renew_after: Type.Optional(Type.String()),
  ca_chain: Type.Optional(Type.Array(Type.String())),
  configuration: Type.Optional(Type.Intersect([Type.Object({ server: Type.String() }), DeviceConfiguration])),
});
export type TokenClaimAnswer = Static<typeof TokenClaimAnswer>;

export const IpPoolSet = Type.Object(
  {
    cidr: Type.String({
      maxLength: 64,
      pattern: '^[0-9A-Fa-f:.]{2,45}/[0-9]{1,3}$',
      description: 'An IPv4 range from /8 to /32 (10.20.0.0/24) or an IPv6 range from /64 to /128 (fd00:20::/64)',
    }),
  },
  { additionalProperties: false },
);
export type IpPoolSet = Static<typeof IpPoolSet>;

export const IpPool = Type.Object({
  fleet: Type.String(),
  cidr: Type.String(),
  family: Type.Union([Type.Literal(4), Type.Literal(6)]),
  size: Type.Number({ description: 'Addresses machines may take (IPv4: network and broadcast left out); approximate past 2^53' }),
  allocated: Type.Integer(),
  allocations: Type.Array(Type.Object({ address: Type.String(), machine_id: Type.String() })),
});
export type IpPool = Static<typeof IpPool>;
