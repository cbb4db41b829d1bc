import { type CaPolicy, type CaPolicySet, type CertificatePolicy, type FieldError, MusterError } from '@muster/contract';
import { deviceUsages, type IssuePolicy } from '../../platform/crypto/ca.ts';
import { parseDuration } from '../../platform/time/duration.ts';
import { addressNumber, addressText } from '../pools/cidr.ts';

// The CA policy's rules (docs/identity.md), pure: what a profile's certificate section and an issued certificate
// may hold. Profiles are checked on apply for what the document says literally; names rendered from templates are
// checked at each issuance.

export const defaultKeyUsages = ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'nonRepudiation'] as const;
export const defaultExtendedKeyUsages = ['clientAuth'] as const;

/** The policy with defaults filled in, from what an admin set; `validitySeconds` is the certificate_validity setting. */
export function policyInForce(
  set: CaPolicySet,
  context: { validitySeconds: number; publicUrl: string },
  meta: { updated_at: string | null; updated_by: string | null } = { updated_at: null, updated_by: null },
): CaPolicy {
  return {
    extended_key_usages: set.extended_key_usages ?? [...defaultExtendedKeyUsages],
    key_usages: set.key_usages ?? [...defaultKeyUsages],
    dns_suffixes: set.dns_suffixes ?? [],
    forbidden_names: set.forbidden_names ?? [],
    ip_ranges: set.ip_ranges ?? [],
    allow_wildcards: set.allow_wildcards ?? false,
    max_validity: set.max_validity ?? null,
    always_forbidden_names: alwaysForbidden(context.publicUrl),
    max_validity_seconds: set.max_validity ? parseDuration(set.max_validity) : context.validitySeconds,
    ...meta,
  };
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is: TLS clients compare it so. */
function unmapped(address: ReturnType<typeof addressNumber>): ReturnType<typeof addressNumber> {
  if (address?.family === 6 && address.n >> 32n === 0xffffn) return { family: 4, n: address.n & 0xffffffffn };
  return address;
}

/** localhost, and the host devices reach muster at: no device certificate may stand in for either. */
function alwaysForbidden(publicUrl: string): string[] {
  // Names are compared without their root dot, so muster's own is kept without it too.
  const host = new URL(publicUrl).hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  return [...new Set(['localhost', host])];
}

interface Range {
  family: 4 | 6;
  first: bigint;
  last: bigint;
}

/** A CIDR of any prefix length, or the reason it is not one. */
export function parseRange(cidr: string): Range | string {
  const [address, prefixText, extra] = cidr.split('/');
  const parsed = addressNumber(address);
  const bits = parsed?.family === 6 ? 128 : 32;
  if (!parsed || extra !== undefined || !/^\d{1,3}$/.test(prefixText ?? '') || Number(prefixText) > bits)
    return `${cidr} is not an IPv4 or IPv6 range (10.0.0.0/8, fd00::/8)`;
  const hostBits = BigInt(bits - Number(prefixText));
  const first = (parsed.n >> hostBits) << hostBits;
  if (first !== parsed.n) return `${cidr} has host bits set: did you mean ${addressText(first, parsed.family)}/${prefixText}?`;
  return { family: parsed.family, first, last: first + (1n << hostBits) - 1n };
}

/** What the schema cannot check of a policy an admin sets: ranges that parse, a validity of at least an hour. */
export function checkPolicySet(set: CaPolicySet): void {
  const errors: FieldError[] = [];
  for (const [i, cidr] of (set.ip_ranges ?? []).entries()) {
    const range = parseRange(cidr);
    if (typeof range === 'string') errors.push({ path: `/ip_ranges/${i}`, message: range });
  }
  if (set.max_validity && parseDuration(set.max_validity) < 3600) errors.push({ path: '/max_validity', message: 'at least 1h' });
  if (errors.length)
    throw new MusterError('validation_failed', `The CA policy is not valid: ${errors[0].path}: ${errors[0].message}`, { errors });
}

const bare = (name: string) => name.toLowerCase().replace(/\.$/, '').replace(/^\./, '');
const under = (name: string, parent: string) => name === parent || name.endsWith(`.${parent}`);

/** Why the policy refuses a DNS name (or a common name that is one), or null when it allows it. */
export function nameViolation(name: string, policy: CaPolicy): string | null {
  const lower = bare(name);
  const wildcard = lower.startsWith('*.');
  if (lower.includes('*') && !(wildcard && policy.allow_wildcards && !lower.slice(2).includes('*')))
    return `${name}: wildcard names are not allowed by the CA policy`;
  const base = wildcard ? lower.slice(2) : lower;
  for (const forbidden of [...policy.always_forbidden_names, ...policy.forbidden_names.map(bare)]) {
    // A wildcard covers one label more than its base: *.example covers muster.example.
    if (under(base, forbidden) || (wildcard && forbidden.slice(forbidden.indexOf('.') + 1) === base))
      return `${name} is forbidden by the CA policy (${forbidden})`;
  }
  const suffixes = policy.dns_suffixes.map(bare);
  if (suffixes.length && !suffixes.some((suffix) => under(base, suffix)))
    return `${name} is not under a DNS suffix the CA policy allows (${suffixes.map((s) => `.${s}`).join(', ')})`;
  return null;
}

/** Why the policy refuses an IP SAN, or null; `own` are the machine's addresses from its fleet's IP pool. */
export function addressViolation(ip: string, policy: CaPolicy, own: string[] = []): string | null {
  const address = unmapped(addressNumber(ip));
  if (!address) return `${ip} is not an IP address`;
  const same = (other: string) => {
    const n = unmapped(addressNumber(other));
    return n !== null && n.family === address.family && n.n === address.n;
  };
  if (policy.always_forbidden_names.some(same)) return `${ip} is the address of muster itself (public_url)`;
  if (own.some(same)) return null;
  const inside = policy.ip_ranges.some((cidr) => {
    const range = parseRange(cidr);
    return typeof range !== 'string' && range.family === address.family && address.n >= range.first && address.n <= range.last;
  });
  if (inside) return null;
  const allowed = policy.ip_ranges.length ? policy.ip_ranges.join(', ') : "none but the machine's own pool address";
  return `${ip} is outside the IP ranges the CA policy allows (${allowed})`;
}

function usageViolations(
  usages: readonly string[],
  allowed: readonly string[],
  path: string | ((i: number) => string),
  errors: FieldError[],
): void {
  for (const [i, usage] of usages.entries())
    if (!allowed.includes(usage))
      errors.push({
        path: typeof path === 'string' ? path : path(i),
        message: `${usage} is not allowed by the CA policy (allowed: ${allowed.join(', ')})`,
      });
}

function validityViolation(seconds: number, shown: string, policy: CaPolicy): string | null {
  if (Math.round(seconds) <= policy.max_validity_seconds) return null;
  return `${shown} is longer than the CA policy allows (${formatSeconds(policy.max_validity_seconds)})`;
}

/** Seconds as the largest whole unit: 7776000 → 90d. */
export function formatSeconds(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

const isTemplate = (value: string) => value.includes('{{') || value.includes('{%');
// TLS clients read the common name as a host name only in a certificate without DNS names (RFC 6125 6.4.4):
// only there is it held to the name rules.
const looksLikeName = (value: string) => /^[A-Za-z0-9*]([A-Za-z0-9_.*-]*[A-Za-z0-9])?\.?$/.test(value);

/**
 * What `profile apply` can decide from the document: usages (given, or the defaults a profile gets), literal names
 * and addresses, validity. Pointers are into the applied body (/spec/certificate/...).
 */
export function profileViolations(certificate: CertificatePolicy | undefined, policy: CaPolicy): FieldError[] {
  const errors: FieldError[] = [];
  const at = (field: string) => `/spec/certificate/${field}`;
  const section = certificate ? '/spec/certificate' : '/spec';
  const c = certificate ?? {};
  usageViolations(
    c.extended_key_usages ?? deviceUsages.extendedKeyUsages,
    policy.extended_key_usages,
    c.extended_key_usages ? (i) => at(`extended_key_usages/${i}`) : section,
    errors,
  );
  usageViolations(c.key_usages ?? deviceUsages.keyUsages, policy.key_usages, c.key_usages ? (i) => at(`key_usages/${i}`) : section, errors);
  const commonName = c.common_name?.trim();
  if (c.dns_names?.length === 0 && commonName && !isTemplate(commonName) && looksLikeName(commonName)) {
    const problem = nameViolation(commonName, policy);
    if (problem) errors.push({ path: at('common_name'), message: problem });
  }
  for (const [i, source] of (c.dns_names ?? []).entries()) {
    const name = source.trim();
    if (name === '' || isTemplate(name)) continue;
    const problem = nameViolation(name, policy);
    if (problem) errors.push({ path: at(`dns_names/${i}`), message: problem });
  }
  for (const [i, source] of (c.ip_addresses ?? []).entries()) {
    const ip = source.trim();
    if (ip === '' || isTemplate(ip)) continue;
    const problem = addressViolation(ip, policy);
    if (problem) errors.push({ path: at(`ip_addresses/${i}`), message: problem });
  }
  if (c.validity) {
    const problem = validityViolation(parseDuration(c.validity), c.validity, policy);
    if (problem) errors.push({ path: at('validity'), message: problem });
  }
  return errors;
}

/**
 * What an issuance is checked against, the certificate as it will be made: rendered names, addresses, usages and
 * the validity asked for (`days` undefined: the server's, capped at the policy's). Pointers name the rendered
 * certificate (/certificate/dns_names/0 is the first name it would hold).
 */
export function issueViolations(issue: Required<IssuePolicy>, policy: CaPolicy, own: string[], requested: boolean): FieldError[] {
  const errors: FieldError[] = [];
  usageViolations(issue.extendedKeyUsages, policy.extended_key_usages, (i) => `/certificate/extended_key_usages/${i}`, errors);
  usageViolations(issue.keyUsages, policy.key_usages, (i) => `/certificate/key_usages/${i}`, errors);
  if (issue.dnsNames.length === 0 && looksLikeName(issue.commonName)) {
    const problem = nameViolation(issue.commonName, policy);
    if (problem) errors.push({ path: '/certificate/common_name', message: problem });
  }
  for (const [i, name] of issue.dnsNames.entries()) {
    const problem = nameViolation(name, policy);
    if (problem) errors.push({ path: `/certificate/dns_names/${i}`, message: problem });
  }
  for (const [i, ip] of issue.ipAddresses.entries()) {
    const problem = addressViolation(ip, policy, own);
    if (problem) errors.push({ path: `/certificate/ip_addresses/${i}`, message: problem });
  }
  if (requested) {
    const problem = validityViolation(issue.days * 86_400, formatSeconds(Math.round(issue.days * 86_400)), policy);
    if (problem) errors.push({ path: '/certificate/validity', message: problem });
  }
  return errors;
}
