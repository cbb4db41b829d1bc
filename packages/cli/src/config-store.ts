import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MusterError } from '@muster/contract/errors.ts';

/** What `muster login` remembers between runs. */
export interface StoredLogin {
  server?: string;
  token?: string;
  username?: string;
}

type Env = Record<string, string | undefined>;

/** MUSTER_CONFIG_DIR, else $XDG_CONFIG_HOME/muster, else ~/.config/muster. */
export function configDir(env: Env = process.env): string {
  if (env.MUSTER_CONFIG_DIR) return env.MUSTER_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'muster');
}

export function configPath(env: Env = process.env): string {
  return join(configDir(env), 'config.json');
}

/** The stored login, or {} when there is none yet. */
export async function readStoredLogin(env: Env = process.env): Promise<StoredLogin> {
  const path = configPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new MusterError('bad_request', `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? pickLogin(value as Record<string, unknown>) : {};
  } catch {
    throw new MusterError('bad_request', `${path} is not valid JSON: fix or delete it, then run \`muster login\``);
  }
}

function pickLogin(value: Record<string, unknown>): StoredLogin {
  const login: StoredLogin = {};
  for (const key of ['server', 'token', 'username'] as const) {
    if (typeof value[key] === 'string') login[key] = value[key];
  }
  return login;
}

/** Replaces the stored login; the file holds a secret, so it is 0600 in a 0700 directory. */
export async function writeStoredLogin(login: StoredLogin, env: Env = process.env): Promise<string> {
  const dir = configDir(env);
  const path = configPath(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Written under a new name, then renamed: a reader never sees half a file, and the mode is never wider.
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(pickLogin({ ...login }), null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new MusterError('bad_request', `cannot write ${path}: ${(error as Error).message}`);
  }
  return path;
}
