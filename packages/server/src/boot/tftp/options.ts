import type { TransferSettings } from './transfer.ts';
import { TftpError, TftpErrorCode } from './types.ts';

export const maxBlksize = 65464;
const defaultBlksize = 512;

function integer(value: string): number | null {
  return /^\d{1,9}$/.test(value.trim()) ? Number(value.trim()) : null;
}

/**
 * Settles the options a read request asked for (RFC 2347/2348/2349/7440). Returns the transfer settings and
 * the options to acknowledge (null: send no OACK). Unknown options are left out of the OACK, as RFC 2347 asks.
 */
export function negotiate(
  requested: Record<string, string>,
  size: number,
  defaults: { timeoutMs: number; retries: number; unconfirmedRetries: number; busyPollMs: number; fileLimitMs: number | null },
) {
  const settings: TransferSettings = {
    blksize: defaultBlksize,
    windowsize: 1,
    timeoutMs: defaults.timeoutMs,
    retries: defaults.retries,
    unconfirmedRetries: defaults.unconfirmedRetries,
    busyPollMs: defaults.busyPollMs,
    fileLimitMs: defaults.fileLimitMs,
  };
  const accepted: Record<string, string> = {};
  if ('blksize' in requested) {
    const value = integer(requested.blksize);
    if (value === null || value < 8) throw new TftpError(TftpErrorCode.optionNegotiation, 'blksize must be 8 to 65464');
    settings.blksize = Math.min(value, maxBlksize);
    accepted.blksize = String(settings.blksize);
  }
  if ('tsize' in requested) accepted.tsize = String(size);
  if ('timeout' in requested) {
    const value = integer(requested.timeout);
    if (value !== null && value >= 1 && value <= 255) {
      settings.timeoutMs = value * 1000;
      accepted.timeout = String(value);
    }
  }
  if ('windowsize' in requested) {
    const value = integer(requested.windowsize);
    if (value === null || value < 1 || value > 65535) throw new TftpError(TftpErrorCode.optionNegotiation, 'windowsize must be 1 to 65535');
    settings.windowsize = value;
    accepted.windowsize = String(value);
  }
  return { settings, oack: Object.keys(accepted).length > 0 ? accepted : null };
}
