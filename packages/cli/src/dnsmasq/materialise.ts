import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PiTreeFile } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import type { FileBody, PiTreeCatalog, PiTreeSource } from './tree-source.ts';

/** Files shared by every serial (same bytes): one copy in the cache, hard-linked; read-only so nobody edits all of them at once. */
const sharedFileMode = 0o444;
/** Rendered for one machine. dnsmasq running as root serves only world-readable files. */
const renderedFileMode = 0o644;
const directoryMode = 0o755;
const parallelFiles = 4;

export interface Materialised {
  serial: string;
  machine_id: string;
  tree: string;
  /** True when muster made the machine now; false when it knew the serial already. */
  machine_created: boolean;
  files: number;
  rendered: number;
  /** Shared files already in the cache: linked, not fetched. */
  cached: number;
  /** Shared files fetched into the cache now. */
  fetched: number;
  bytes_fetched: number;
}

export interface MaterialiserOptions {
  /** The TFTP root: serial directories are made in it, the cache and work directories under ROOT/.muster. */
  root: string;
  source: PiTreeSource;
}

/** A path inside the serial directory from the server: relative, '/'-separated, no empty, `.` or `..` segment. */
export function checkTreePath(path: string): string {
  const segments = path.split('/');
  const bad =
    path.length === 0 ||
    path.length > 255 ||
    /[\u0000-\u001f\u007f\\]/.test(path) ||
    segments.some((s) => s === '' || s === '.' || s === '..') ||
    segments[0] === '.muster';
  if (bad) throw new MusterError('internal', `the server listed a file path that is not safe to write: ${JSON.stringify(path)}`);
  return path;
}

/**
 * Writes a serial's directory under the TFTP root from muster: built in ROOT/.muster/tmp, then renamed into
 * place, so dnsmasq sees all of it or none. Files that are the same for every machine come from a content
 * cache (ROOT/.muster/sha256/<hash>) by hard link and are fetched once; rendered templates are written per
 * machine. One fetch per missing hash even when several serials need it at once.
 */
export class PiDirectoryMaterialiser {
  readonly root: string;
  readonly #source: PiTreeSource;
  readonly #cacheDir: string;
  readonly #workDir: string;
  readonly #caching = new Map<string, Promise<boolean>>();

  constructor(options: MaterialiserOptions) {
    this.root = options.root;
    this.#source = options.source;
    this.#cacheDir = join(options.root, '.muster', 'sha256');
    this.#workDir = join(options.root, '.muster', 'tmp');
  }

  /** Makes the cache and work directories and clears work left by a run that was killed. */
  async prepare(): Promise<void> {
    await rm(this.#workDir, { recursive: true, force: true });
    for (const dir of [join(this.root, '.muster'), this.#cacheDir, this.#workDir]) {
      await mkdir(dir, { recursive: true, mode: directoryMode });
      await chmod(dir, directoryMode);
    }
  }

  directoryOf(serial: string): string {
    return join(this.root, serial);
  }

  async exists(serial: string): Promise<boolean> {
    return lstat(this.directoryOf(serial)).then(
      () => true,
      () => false,
    );
  }

  /** Materialises the serial's directory; null when it exists already (also when it appeared meanwhile). */
  async materialise(serial: string): Promise<Materialised | null> {
    if (await this.exists(serial)) return null;
    const placed = await this.#source.provision(serial);
    const listing = await this.#source.files(serial);
    const files = listing.files.map((file) => ({ ...file, path: checkTreePath(file.path) }));
    const work = await mkdtemp(join(this.#workDir, `${serial}-`));
    const result: Materialised = {
      serial,
      machine_id: listing.machine_id ?? placed.machine.machine_id,
      tree: listing.tree,
      machine_created: placed.created,
      files: files.length,
      rendered: 0,
      cached: 0,
      fetched: 0,
      bytes_fetched: 0,
    };
    try {
      await chmod(work, directoryMode);
      await eachLimited(files, parallelFiles, (file) => this.#place(serial, file, work, result));
      return (await this.#moveIntoPlace(work, serial)) ? result : null;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  async #place(serial: string, file: PiTreeFile, work: string, result: Materialised): Promise<void> {
    const target = join(work, file.path);
    await makeDirectories(work, dirname(file.path));
    if (file.template) {
      await writeVerified(await this.#source.file(serial, file.path), target, null);
      await chmod(target, renderedFileMode);
      result.rendered++;
      return;
    }
    const fetched = await this.#cache(file, () => this.#source.file(serial, file.path));
    if (fetched) {
      result.fetched++;
      result.bytes_fetched += file.size;
    } else result.cached++;
    const cached = join(this.#cacheDir, file.sha256);
    await link(cached, target).catch((error: NodeJS.ErrnoException) => {
      // A filesystem without hard links (or a full link count) gets a copy.
      if (error.code === 'EXDEV' || error.code === 'EPERM' || error.code === 'EMLINK') return copyFile(cached, target);
      throw error;
    });
  }

  /**
   * Fills the cache with every shared file of every tree, so that even the first serial of a tree only waits
   * for its rendered files. Returns what it fetched.
   */
  async warm(catalog: PiTreeCatalog): Promise<{ trees: number; files: number; bytes: number }> {
    const trees = await catalog.trees();
    const wanted = new Map<string, PiTreeFile>();
    for (const tree of trees) for (const file of tree.files) if (!file.template) wanted.set(file.sha256, file);
    const fetched = { trees: trees.length, files: 0, bytes: 0 };
    await eachLimited([...wanted.values()], parallelFiles, async (file) => {
      if (await this.#cache(file, () => catalog.artifact(file.sha256))) {
        fetched.files++;
        fetched.bytes += file.size;
      }
    });
    return fetched;
  }

  /** Puts the file in the cache unless it is there; true when it had to be fetched. One fetch per hash at a time. */
  #cache(file: PiTreeFile, body: () => Promise<FileBody>): Promise<boolean> {
    const pending = this.#caching.get(file.sha256);
    // Whoever joins a fetch under way did not fetch: only the first caller counts it.
    if (pending) return pending.then(() => false);
    const filling = this.#fillCache(file, body).finally(() => this.#caching.delete(file.sha256));
    this.#caching.set(file.sha256, filling);
    return filling;
  }

  async #fillCache(file: PiTreeFile, body: () => Promise<FileBody>): Promise<boolean> {
    const cached = join(this.#cacheDir, file.sha256);
    const present = await stat(cached).catch(() => null);
    if (present?.isFile() && present.size === file.size) return false;
    const temporary = join(this.#workDir, `sha256-${file.sha256}-${randomBytes(4).toString('hex')}`);
    try {
      await writeVerified(await body(), temporary, file);
      await chmod(temporary, sharedFileMode);
      await rename(temporary, cached);
    } finally {
      await rm(temporary, { force: true });
    }
    return true;
  }

  async #moveIntoPlace(work: string, serial: string): Promise<boolean> {
    try {
      await rename(work, this.directoryOf(serial));
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return false;
      throw error;
    }
  }
}

async function makeDirectories(base: string, relative: string): Promise<void> {
  if (relative === '.' || relative === '') return;
  let current = base;
  for (const part of relative.split('/')) {
    current = join(current, part);
    await mkdir(current, { mode: directoryMode }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await chmod(current, directoryMode);
  }
}

/** Streams the body to a new file, checking its size and sha256 against the listing when one is given. */
async function writeVerified(body: FileBody, target: string, expected: PiTreeFile | null): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      if (expected && size > expected.size) return done(mismatch(expected, `more than ${expected.size} bytes`));
      done(null, chunk);
    },
  });
  await pipeline(Readable.from(body, { objectMode: false }), measure, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
  if (!expected) return;
  const sha256 = hash.digest('hex');
  if (size !== expected.size || sha256 !== expected.sha256) throw mismatch(expected, `${size} bytes with sha256 ${sha256}`);
}

function mismatch(expected: PiTreeFile, got: string): MusterError {
  return new MusterError(
    'internal',
    `${expected.path}: the server listed ${expected.size} bytes with sha256 ${expected.sha256} but sent ${got}`,
  );
}

/** Runs `work` on the items, `limit` at a time; after a failure no new item starts, and all running ones end first. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++]);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failure = outcomes.find((o) => o.status === 'rejected');
  if (failure) throw failure.reason;
}
