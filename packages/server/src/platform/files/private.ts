import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';

/** What a directory or file allowed before it was made private, for the log; null when it was private already. */
export type Loosened = { path: string; mode: string } | null;

function tighten(path: string, mode: number): Loosened {
  const before = statSync(path).mode & 0o777;
  if ((before & ~mode) === 0) return null;
  chmodSync(path, mode);
  return { path, mode: before.toString(8).padStart(4, '0') };
}

/**
 * A directory only its owner may enter (0700), whatever the umask: the data directory holds the database
 * with the session key, the boot URL key and password hashes. An existing looser one is tightened.
 */
export function privateDirectory(path: string): Loosened {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return tighten(path, 0o700);
}

/** Makes existing files readable by their owner only (0600); absent ones are skipped. */
export function privateFiles(...paths: string[]): Loosened[] {
  return paths.filter((path) => existsSync(path)).map((path) => tighten(path, 0o600));
}
