import { type Static, Type } from 'typebox';
import { NullableTimestamp } from './common.ts';
import { Duration, extendedKeyUsages, keyUsages } from './profile.ts';

// The CA policy (docs/identity.md): what any certificate muster issues may hold, set by an admin. A profile's
// certificate section may narrow it, never widen it; `profile apply` and every issuance check it.

const DnsName = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^\\.?[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\\.?$',
});
// Checked by the server (modules/ca/policy.ts), whose message says what is wrong with a range.
const Cidr = Type.String({ minLength: 1, maxLength: 64, description: 'An IPv4 or IPv6 range: 10.0.0.0/8, fd00::/8' });

const policyFields = {
  extended_key_usages: Type.Array(Type.Enum(extendedKeyUsages), {
    minItems: 1,
    uniqueItems: true,
    description: 'Extended key usages a certificate may have; [clientAuth] by default',
  }),
  key_usages: Type.Array(Type.Enum(keyUsages), {
    minItems: 1,
    uniqueItems: true,
    description: 'Key usages a certificate may have; all four by default',
  }),
  dns_suffixes: Type.Array(DnsName, {
    maxItems: 64,
    uniqueItems: true,
    description: 'DNS names must equal one of these or end in .SUFFIX (a leading dot is the same); empty: any name not forbidden',
  }),
  forbidden_names: Type.Array(DnsName, {
    maxItems: 64,
    uniqueItems: true,
    description: 'Names no certificate may hold, nor any name under them, on top of localhost and the host of public_url',
  }),
  ip_ranges: Type.Array(Cidr, {
    maxItems: 64,
    uniqueItems: true,
    description: "IP SANs allowed besides the machine's own address from its fleet's IP pool; none by default",
  }),
  allow_wildcards: Type.Boolean({ description: 'Whether a DNS name may be a wildcard (*.example); false by default' }),
};

/** What an admin sets: the whole policy, each field its default when left out. */
export const CaPolicySet = Type.Object(
  {
    extended_key_usages: Type.Optional(policyFields.extended_key_usages),
    key_usages: Type.Optional(policyFields.key_usages),
    dns_suffixes: Type.Optional(policyFields.dns_suffixes),
    forbidden_names: Type.Optional(policyFields.forbidden_names),
    ip_ranges: Type.Optional(policyFields.ip_ranges),
    allow_wildcards: Type.Optional(policyFields.allow_wildcards),
    max_validity: Type.Optional(
      Type.Union([Duration, Type.Null()], { description: 'The longest validity; the certificate_validity setting when null or left out' }),
    ),
  },
  { additionalProperties: false },
);
export type CaPolicySet = Static<typeof CaPolicySet>;

/** The policy in force, defaults filled in. */
export const CaPolicy = Type.Object({
  ...policyFields,
  max_validity: Type.Union([Duration, Type.Null()], { description: 'null: the certificate_validity setting' }),
  always_forbidden_names: Type.Array(Type.String(), {
    description: 'Names forbidden whatever the policy says: localhost and the host of public_url',
  }),
  max_validity_seconds: Type.Integer({ description: 'The longest validity in force, in seconds' }),
  updated_at: NullableTimestamp,
  updated_by: Type.Union([Type.String(), Type.Null()], { description: 'null while the defaults hold' }),
});
export type CaPolicy = Static<typeof CaPolicy>;
