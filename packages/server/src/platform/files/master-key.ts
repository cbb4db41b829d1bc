import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { Keyring, KeyringError, newMasterKey } from '../crypto/keyring.ts';
import { type Loosened, privateFiles } from './private.ts';

export interface MasterKeySource {
  /** MUSTER_MASTER_KEY: wins over the file when set. */
  env: string | null;
  /** The key file (MUSTER_MASTER_KEY_FILE, DATA_DIR/master.key by default). */
  file: string;
}

export interface LoadedKeyring {
  keyring: Keyring;
  /** Where the keys came from, for messages: never the keys. */
  origin: string;
  /** True when the key file was made just now. */
  created: boolean;
  /** The key file's mode before it was made private, when it was looser. */
  loosened: Loosened;
}

/**
 * The master keys: MUSTER_MASTER_KEY when set; else the key file, made once with a new key (mode 0600) when it
 * does not exist. Two servers starting at once on one data directory make one file: the second reads the first's.
 */
export function loadKeyring(source: MasterKeySource, options: { create?: boolean } = {}): LoadedKeyring {
  if (source.env)
    return { keyring: Keyring.parse(source.env, 'MUSTER_MASTER_KEY'), origin: 'MUSTER_MASTER_KEY', created: false, loosened: null };
  const origin = source.file;
  let created = false;
  if (options.create === false && !existsSync(source.file)) {
    throw new KeyringError(
      `no master key file at ${origin} (the server makes it at its first start; MUSTER_MASTER_KEY_FILE names another)`,
    );
  }
  try {
    mkdirSync(dirname(source.file), { recursive: true, mode: 0o700 });
    writeFileSync(source.file, `${newMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new KeyringError(`cannot create the master key file ${origin}: ${(error as Error).message}`);
  }
  const loosened = privateFiles(source.file)[0] ?? null;
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (error) {
    throw new KeyringError(`cannot read the master key file ${origin}: ${(error as Error).message}`);
  }
  return { keyring: Keyring.parse(text, origin), origin, created, loosened };
}

/** Replaces the key file with these keys, atomically and durably (a new file synced, renamed, its folder synced), mode 0600. */
export function writeKeyFile(file: string, keyring: Keyring): void {
  const next = `${file}.new`;
  const fd = openSync(next, 'w', 0o600);
  try {
    writeSync(fd, keyring.serialize());
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(next, file);
  const folder = openSync(dirname(file), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}
