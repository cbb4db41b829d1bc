import { MusterError } from './errors.ts';

export const identifierKinds = ['mac', 'uuid', 'serial', 'asset', 'hwid', 'ek', 'cert'] as const;
export type IdentifierKind = (typeof identifierKinds)[number];

export interface Identifier {
  kind: IdentifierKind;
  value: string;
}

/** Values firmware ships by default: they identify nothing (compared case-insensitively). */
export const bogusValues: ReadonlySet<string> = new Set(
  [
    'To Be Filled By O.E.M.',
    'To Be Filled By OEM',
    'Default string',
    'Default',
    'System Serial Number',
    'System Product Name',
    'Chassis Serial Number',
    'Base Board Serial Number',
    'Type2 - Board Serial Number',
    'Not Specified',
    'Not Available',
    'Not Applicable',
    'None',
    'N/A',
    'NA',
    'Unknown',
    'Invalid',
    'OEM',
    'O.E.M.',
    'Serial',
    'SerialNumber',
    'Asset Tag',
    'No Asset Tag',
    'No Asset Information',
    'Asset-1234567890',
    '0123456789',
    '1234567890',
    '123456789',
    '12345678',
    'xxxxxxxx',
    'XXXXXXXXXXXX',
    '03000200-0400-0500-0006-000700080009',
  ].map((value) => value.toLowerCase()),
);

/** True for values that must never identify a machine: firmware defaults, and one character repeated. */
export function isBogus(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === '' || bogusValues.has(v)) return true;
  const compact = v.replace(/[-:.\s]/g, '');
  return compact.length > 0 && /^(.)\1*$/.test(compact);
}

const hex = /^[0-9a-f]+$/;

function normalizeMac(raw: string): string {
  const compact = raw.trim().toLowerCase().replace(/[-:.]/g, '');
  if (compact.length !== 12 || !hex.test(compact)) throw invalid('mac', raw, 'expected six hex octets, e.g. 00:11:22:33:44:55');
  return compact.match(/../g)?.join(':') ?? compact;
}

function normalizeUuid(raw: string): string {
  const compact = raw
    .trim()
    .toLowerCase()
    .replace(/^\{|\}$/g, '')
    .replace(/-/g, '');
  if (compact.length !== 32 || !hex.test(compact)) throw invalid('uuid', raw, 'expected a UUID, e.g. 4c4c4544-0042-3510-8052-b4c04f4e4d32');
  return `${compact.slice(0, 8)}-${compact.slice(8, 12)}-${compact.slice(12, 16)}-${compact.slice(16, 20)}-${compact.slice(20)}`;
}

function normalizeHexDigest(kind: IdentifierKind, raw: string): string {
  const compact = raw
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '')
    .replace(/:/g, '');
  if (compact.length !== 64 || !hex.test(compact)) throw invalid(kind, raw, 'expected a sha256 digest in hex');
  return compact;
}

function normalizeText(kind: IdentifierKind, raw: string): string {
  const value = raw.trim();
  if (value.length > 128 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(kind, raw, 'expected at most 128 printable characters');
  }
  return value;
}

/**
 * A Raspberry Pi's serial: the low 32 bits as 8 hex digits, as the Pi 3, 4 and 5 bootloaders put it in front of
 * every TFTP path (`abcd1234/start4.elf`), or the whole 64-bit serial, 16 digits, as /proc/cpuinfo shows it.
 */
export const piSerialSource = '[0-9a-fA-F]{8}(?:[0-9a-fA-F]{8})?';
const piSerialPattern = new RegExp(`^${piSerialSource}$`);

export function isPiSerial(value: string): boolean {
  return piSerialPattern.test(value);
}

/**
 * The upper halves a whole serial has only on a Pi: 00000000 up to the Pi 3, 10000000 on a Pi 4 (BCM2711). A Pi
 * 5's varies from board to board, so its whole serial looks like any other 16 hex digits: only a Pi door knows.
 */
const piUpperHalf = /^(?:00000000|10000000)(?=[0-9a-f]{8}$)/;

/**
 * A serial is trimmed; one of the Pi's hex form is lower-cased as the bootloader writes it, so that a serial
 * typed as `ABCD1234` and the Pi that asks for `abcd1234/config.txt` are one machine. A Pi 3 or 4 serial in its
 * 16-digit form (`10000000abcd1234`) is that machine too, and becomes the 8 digits its bootloader sends.
 */
export function normalizeSerial(raw: string): string {
  const value = normalizeText('serial', raw);
  return isPiSerial(value) ? value.toLowerCase().replace(piUpperHalf, '') : value;
}

/**
 * A serial where it is known to be a Pi's (`muster pi provision`, `pi show`, the Pi doors): the 8 lower-case hex
 * digits its bootloader sends (TFTP_PREFIX=0), from either form, a Pi 5's whole serial included. Anything else
 * is refused with invalid_identifier.
 */
export function normalizePiSerial(raw: string): string {
  const value = raw.trim();
  if (!isPiSerial(value)) throw invalid('serial', raw, 'expected a Pi serial: 8 hex digits as in its TFTP path, or all 16');
  return value.toLowerCase().slice(-8);
}

function invalid(kind: string, raw: string, hint: string): MusterError {
  return new MusterError('invalid_identifier', `${kind} "${raw.slice(0, 80)}" is not valid: ${hint}`, {
    errors: [{ path: `/${kind}`, message: hint }],
  });
}

/**
 * Normalises one identifier. Returns null for a bogus value (it identifies nothing);
 * throws invalid_identifier for a value that is malformed for its kind.
 */
export function normalizeIdentifier(kind: IdentifierKind, raw: string): Identifier | null {
  if (isBogus(raw)) return null;
  switch (kind) {
    case 'mac':
      return { kind, value: normalizeMac(raw) };
    case 'uuid':
      return { kind, value: normalizeUuid(raw) };
    case 'ek':
    case 'cert':
      return { kind, value: normalizeHexDigest(kind, raw) };
    default: {
      const value = kind === 'serial' ? normalizeSerial(raw) : normalizeText(kind, raw);
      return isBogus(value) ? null : { kind, value };
    }
  }
}

/** Parses `kind:value` (as accepted wherever a machine id is taken). Returns null when it is no identifier. */
export function parseIdentifierRef(ref: string): Identifier | null {
  const colon = ref.indexOf(':');
  if (colon <= 0) return null;
  const kind = ref.slice(0, colon);
  if (!(identifierKinds as readonly string[]).includes(kind)) return null;
  return normalizeIdentifier(kind as IdentifierKind, ref.slice(colon + 1));
}
