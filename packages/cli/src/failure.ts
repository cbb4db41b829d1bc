import { errorCodes, MusterError } from '@muster/contract/errors.ts';
import { CommanderError } from 'commander';

/** What the CLI tells a person when a command fails, and the exit code scripts see. */
export interface Failure {
  message: string;
  exit: number;
}

export const usageExit = errorCodes.bad_request.exit;

/** Maps anything thrown by a command to one line of text and an exit code (contract/errors.ts). */
export function describeFailure(error: unknown): Failure {
  if (error instanceof MusterError) {
    // The server's detail often lists the field errors already; say each one once.
    const fields = error.errors.filter((e) => !error.message.includes(`${e.path} ${e.message}`)).map((e) => `${e.path}: ${e.message}`);
    let message = error.message;
    if (fields.length > 0) message += ` (${fields.join('; ')})`;
    return { message: oneLine(message), exit: errorCodes[error.code].exit };
  }
  if (error instanceof CommanderError) return { message: oneLine(error.message.replace(/^error: /, '')), exit: usageExit };
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' && e.path) return { message: `no such file: ${e.path}`, exit: usageExit };
  if ((e?.code === 'EACCES' || e?.code === 'EPERM') && e.path) return { message: `permission denied: ${e.path}`, exit: 1 };
  return { message: oneLine(e instanceof Error ? e.message : String(error)), exit: 1 };
}

/** Failure output is one line, so a log line or a script's $(…) shows all of it. */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
}
