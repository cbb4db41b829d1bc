import { createHash } from 'node:crypto';
import { isPiSerial } from '@muster/contract/identifiers.ts';
import type { PiModel } from './config-txt.ts';

/**
 * Pi serial numbers are 64 bits. On a Pi 4 (BCM2711) the upper half is always 0x10000000; on a Pi 5 (BCM2712)
 * it varies from board to board. Both bootloaders use only the lower 32 bits, as 8 lower-case hex digits, for
 * the TFTP directory prefix (TFTP_PREFIX=0), so a Pi 5's prefix is a truncation of its serial.
 */
export interface PiSerial {
  /** The TFTP prefix the bootloader presents, 8 lower-case hex digits. */
  serial: string;
  /** The whole serial, as /proc/cpuinfo and the device tree show it. */
  boardSerial: string;
}

export const maxSerial = 0xffffffff;

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** The whole serial of a simulated board; a Pi 5's upper half is made up, deterministically, from its prefix. */
export function boardSerial(model: PiModel, serial: string): string {
  if (model === 'pi4') return `10000000${serial}`;
  const upper = createHash('sha256').update(`pi5:${serial}`).digest('hex').slice(0, 8);
  return `${upper === '00000000' ? '00000001' : upper}${serial}`;
}

/** The `count` serials from `start` on, in order. */
export function piSerials(model: PiModel, start: number, count: number): PiSerial[] {
  return Array.from({ length: count }, (_, i) => {
    const serial = hex8(start + i);
    return { serial, boardSerial: boardSerial(model, serial) };
  });
}

/**
 * Reads a first serial as a person types it: 8 hex digits (the TFTP prefix), or the whole 16-digit serial of
 * which the bootloader uses the lower 8. Returns the prefix as a number, or a message saying what is wrong.
 */
export function parseSerialStart(text: string): number | string {
  const value = text.trim().toLowerCase().replace(/^0x/, '');
  if (!isPiSerial(value)) {
    return `"${text}" is not a Pi serial: expected 8 hex digits (the TFTP prefix, e.g. 1a2b3c4d) or the whole 16-digit serial`;
  }
  return Number.parseInt(value.slice(-8), 16);
}
