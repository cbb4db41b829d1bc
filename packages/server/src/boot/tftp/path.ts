import { TftpError, TftpErrorCode } from './types.ts';

const maxLength = 255;

/**
 * Makes a requested name safe to look up: relative, '/'-separated, without empty, '.' or '..' segments.
 * Backslashes count as separators, a leading '/' and doubled slashes are dropped (the Pi 5 asks for
 * '<serial>//config.txt'). Any '..' segment, in any of these spellings, is refused, as are control characters
 * and overlong names.
 */
export function safePath(filename: string): string {
  if (filename.length === 0 || filename.length > maxLength || /[\u0000-\u001f\u007f]/.test(filename)) {
    throw new TftpError(TftpErrorCode.accessViolation, 'Access violation');
  }
  const segments = filename
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.some((s) => s === '..' || /%2e%2e|%2f|%5c/i.test(s))) {
    throw new TftpError(TftpErrorCode.accessViolation, 'Access violation');
  }
  return segments.join('/');
}
