import { MusterError } from '@muster/contract/errors.ts';
import {
  type Identifier,
  type IdentifierKind,
  identifierKinds,
  normalizeIdentifier,
  normalizePiSerial,
} from '@muster/contract/identifiers.ts';
import { InvalidArgumentError } from 'commander';
import { maxPageSize } from './client.ts';

/** For repeatable and variadic options: `--label a=1 --label b=2` and `--label a=1 b=2` both collect. */
export function collect<T>(parse: (value: string) => T) {
  return (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)];
}

/** `key=value`, as labels are written on the command line. */
export function parseLabel(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value, e.g. rack=r12');
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** A label filter for lists: `key=value`, or `key` alone for "has this label". */
export function parseLabelFilter(value: string): string {
  if (value === '' || value.startsWith('=')) throw new InvalidArgumentError('expected key=value or key, e.g. rack=r12');
  return value;
}

export function parseLabelKey(value: string): string {
  if (value === '' || value.includes('=')) throw new InvalidArgumentError('expected a label key alone, e.g. rack');
  return value;
}

/** `kind:value`, e.g. serial:AZJN-0042 or mac:00:11:22:33:44:55, checked by the contract's rules. */
export function parseIdentifier(text: string): Identifier {
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  if (colon <= 0 || !(identifierKinds as readonly string[]).includes(kind)) {
    throw new InvalidArgumentError(`expected kind:value where kind is one of ${identifierKinds.join(', ')}`);
  }
  let identifier: Identifier | null;
  try {
    identifier = normalizeIdentifier(kind as IdentifierKind, text.slice(colon + 1));
  } catch (error) {
    throw new InvalidArgumentError(error instanceof MusterError ? error.message : String(error));
  }
  if (!identifier) throw new InvalidArgumentError(`"${text.slice(colon + 1)}" is a firmware default or blank and identifies nothing`);
  return identifier;
}

/** A Pi serial, as its TFTP path has it (8 hex digits) or /proc/cpuinfo shows it (16): the 8 the Pi doors use. */
export function parsePiSerial(text: string): string {
  try {
    return normalizePiSerial(text);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof MusterError ? error.message : String(error));
  }
}

export function parsePageSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > maxPageSize) throw new InvalidArgumentError(`expected a whole number from 1 to ${maxPageSize}`);
  return n;
}
