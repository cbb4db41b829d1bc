import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, lstat, mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { MusterError } from '@muster/contract/errors.ts';

// Writing a profile's rendered files into a root filesystem being staged (`muster stage --rootfs DIR`, docs/stage.md).
// Nothing is written outside DIR: every directory on the way is resolved and must stay inside it, so a symbolic
// link already in the tree (etc -> /etc) cannot carry a file out. Each file is written whole or not at all: a
// temporary file beside it with its mode, then a rename.

export interface FileToWrite {
  path: string;
  mode: string;
  owner: string;
  content: string;
}

export interface WrittenFile {
  /** Where it was written, under the root. */
  path: string;
  mode: string;
  owner: string;
  /** Why the owner was not set, or null when it was. */
  ownerNotSet: string | null;
}

/** The root directory, resolved; it must exist and be writable. */
export async function openRootfs(dir: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch {
    throw new MusterError('bad_request', `--rootfs ${dir} does not exist`);
  }
  if (!(await stat(root)).isDirectory()) throw new MusterError('bad_request', `--rootfs ${dir} is not a directory`);
  await access(root, constants.W_OK).catch(() => {
    throw new MusterError('bad_request', `--rootfs ${dir} is not writable`);
  });
  return root;
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
}

/** The directory a file goes in, made (0755) where missing; refused when any part of the way leads out of the root. */
async function directoryFor(root: string, segments: string[], shown: string): Promise<string> {
  let current = root;
  for (const segment of segments) {
    const next = join(current, segment);
    const found = await lstat(next).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (!found) {
      await mkdir(next, { mode: 0o755 });
      await chmod(next, 0o755);
      current = next;
      continue;
    }
    const real = found.isSymbolicLink() ? await realpath(next).catch(() => null) : next;
    if (real === null || !inside(root, real))
      throw new MusterError(
        'bad_request',
        `refusing to write ${shown}: ${relative(root, next)} is a symbolic link leading out of the root`,
      );
    if (!(await stat(real)).isDirectory())
      throw new MusterError('bad_request', `refusing to write ${shown}: ${relative(root, next)} is not a directory`);
    current = real;
  }
  return current;
}

/** Writes one file under the root, atomically, with its mode, and its owner when `owners` can set it. */
export async function writeRootfsFile(root: string, file: FileToWrite, owners: Owners): Promise<WrittenFile> {
  const shown = file.path.replace(/^\/+/, '');
  const segments = shown.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..'))
    throw new MusterError('bad_request', `refusing to write ${file.path}: not a plain relative path`);
  const name = segments.pop() as string;
  const directory = await directoryFor(root, segments, shown);
  const target = join(directory, name);
  const existing = await lstat(target).catch(() => null);
  if (existing?.isDirectory()) throw new MusterError('bad_request', `refusing to write ${shown}: it is a directory`);
  const mode = Number.parseInt(file.mode, 8);
  const owner = await owners.resolve(file.owner);
  const temporary = join(directory, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(file.content, 'utf8');
    await handle.chmod(mode);
    if (owner.ids) await handle.chown(owner.ids.uid, owner.ids.gid);
    await handle.sync();
    await handle.close();
    // rename replaces what is at the target, a symbolic link included, and never follows it.
    await rename(temporary, target);
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  return { path: target, mode: file.mode, owner: file.owner, ownerNotSet: owner.ids ? null : owner.why };
}

/**
 * Owners as the staged system will see them: numbers as they are, names from the root's own etc/passwd and
 * etc/group (not this host's, whose users may differ; root is 0 everywhere). Set only when running as root.
 */
export class Owners {
  readonly #root: string;
  readonly #asRoot: boolean;
  #tables: Promise<{ users: Map<string, { uid: number; gid: number }>; groups: Map<string, number> }> | null = null;

  constructor(root: string, asRoot = process.getuid?.() === 0) {
    this.#root = root;
    this.#asRoot = asRoot;
  }

  async resolve(owner: string): Promise<{ ids: { uid: number; gid: number } | null; why: string }> {
    if (!this.#asRoot) return { ids: null, why: 'not running as root' };
    const [user, group] = owner.split(':');
    const { users, groups } = await this.#load();
    const named = /^\d+$/.test(user)
      ? { uid: Number(user), gid: -1 }
      : (users.get(user) ?? (user === 'root' ? { uid: 0, gid: 0 } : undefined));
    if (!named) return { ids: null, why: `no user ${user} in the root's etc/passwd` };
    if (group === undefined) return { ids: named, why: '' };
    const gid = /^\d+$/.test(group) ? Number(group) : (groups.get(group) ?? (group === 'root' ? 0 : undefined));
    if (gid === undefined) return { ids: null, why: `no group ${group} in the root's etc/group` };
    return { ids: { uid: named.uid, gid }, why: '' };
  }

  #load() {
    this.#tables ??= (async () => {
      const users = new Map<string, { uid: number; gid: number }>();
      const groups = new Map<string, number>();
      for (const fields of await this.#table('passwd')) {
        if (/^\d+$/.test(fields[2] ?? '') && /^\d+$/.test(fields[3] ?? ''))
          users.set(fields[0], { uid: Number(fields[2]), gid: Number(fields[3]) });
      }
      for (const fields of await this.#table('group')) if (/^\d+$/.test(fields[2] ?? '')) groups.set(fields[0], Number(fields[2]));
      return { users, groups };
    })();
    return this.#tables;
  }

  /** The root's etc/NAME as fields, or nothing when it is missing or leads out of the root. */
  async #table(name: string): Promise<string[][]> {
    const path = await realpath(join(this.#root, 'etc', name)).catch(() => null);
    if (path === null || !inside(this.#root, path)) return [];
    const text = await readFile(path, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.split(':'));
  }
}
