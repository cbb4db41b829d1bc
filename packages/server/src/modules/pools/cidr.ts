import { isIPv4, isIPv6 } from 'node:net';
import { MusterError } from '@muster/contract';

// Address ranges of IP pools (docs/identity.md), IPv4 and IPv6 alike as BigInt. IPv6 addresses are written in
// RFC 5952's canonical form, so that one address has one spelling and the (fleet, address) key holds.

export interface Range {
  family: 4 | 6;
  /** The lowest and highest address a machine may take. */
  first: bigint;
  last: bigint;
  /** The range as it is stored: network address and prefix, canonical. */
  text: string;
}

const bad = (cidr: string) =>
  new MusterError(
    'bad_request',
    `${cidr} is not an IPv4 range from /8 to /32 (10.20.0.0/24) or an IPv6 range from /64 to /128 (fd00:20::/64)`,
  );

/** An IPv6 address as a number; null when it is not one, or holds an embedded IPv4 address. */
function parseIPv6(text: string): bigint | null {
  if (!isIPv6(text) || text.includes('.') || text.includes('%')) return null;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === null ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  if (groups.length !== 8) return null;
  return groups.reduce((n, group) => (n << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

function parseIPv4(text: string): bigint | null {
  if (!isIPv4(text)) return null;
  return text.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
}

/** An address in its one written form: dotted IPv4, or RFC 5952 IPv6 (lower case, the longest zero run as ::). */
export function addressText(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((n >> shift) & 0xffffn));
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`;
}

/** An address of either family as a number; null when it is not one. */
export function addressNumber(text: string): { family: 4 | 6; n: bigint } | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, n: v4 };
  const v6 = parseIPv6(text);
  return v6 === null ? null : { family: 6, n: v6 };
}

/**
 * The addresses of a range machines may take. IPv4: the network and broadcast addresses are left out (both kept
 * for /31 and /32). IPv6: the subnet-router anycast address (all host bits zero) is left out, except in /127 and
 * /128; there is no broadcast. IPv4-mapped and other embedded-IPv4 forms are refused.
 */
export function parseCidr(cidr: string): Range {
  const slash = cidr.indexOf('/');
  if (slash < 0 || !/^\d{1,3}$/.test(cidr.slice(slash + 1))) throw bad(cidr);
  const address = addressNumber(cidr.slice(0, slash));
  const prefix = BigInt(cidr.slice(slash + 1));
  if (!address) throw bad(cidr);
  const bits = address.family === 4 ? 32n : 128n;
  if (address.family === 4 ? prefix < 8n || prefix > 32n : prefix < 64n || prefix > 128n) throw bad(cidr);
  if (address.family === 6 && address.n >> 32n === 0xffffn) throw bad(cidr); // ::ffff:0:0/96, IPv4-mapped
  const size = 1n << (bits - prefix);
  const network = (address.n >> (bits - prefix)) << (bits - prefix);
  const text = `${addressText(network, address.family)}/${prefix}`;
  if (address.family === 4)
    return size <= 2n
      ? { family: 4, first: network, last: network + size - 1n, text }
      : { family: 4, first: network + 1n, last: network + size - 2n, text };
  return { family: 6, first: size <= 2n ? network : network + 1n, last: network + size - 1n, text };
}

/** How many addresses machines may take from the range. */
export function rangeSize(range: Range): bigint {
  return range.last - range.first + 1n;
}

/** The lowest address of the range not in `taken`, found among the gaps of the taken ones (never by walking the range). */
export function lowestFree(range: Range, taken: Iterable<bigint>): bigint | null {
  const inside = [...taken].filter((n) => n >= range.first && n <= range.last).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let candidate = range.first;
  for (const n of inside) {
    if (n > candidate) break;
    if (n === candidate) candidate++;
  }
  return candidate <= range.last ? candidate : null;
}
