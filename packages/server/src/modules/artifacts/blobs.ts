import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MusterError } from '@muster/contract';

/** A file received into the incoming directory, hashed and on disk, not yet in place. */
export interface Received {
  tmp: string;
  sha256: string;
  size: number;
}

/** Uploads left behind by a crash are removed after this long; a live upload writes far more often. */
const staleIncomingMs = 24 * 3600 * 1000;

/**
 * The artifact files on disk: `<dir>/sha256/<first two hex digits>/<sha256>`, each written once and never
 * changed. Uploads arrive in `<dir>/incoming` (the same file system, so that the final rename is atomic).
 */
export class BlobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  path(sha256: string): string {
    return join(this.dir, 'sha256', sha256.slice(0, 2), sha256);
  }

  get #incoming(): string {
    return join(this.dir, 'incoming');
  }

  /**
   * Streams `source` into a new file of the incoming directory while hashing it, and fsyncs it. More than
   * `maxBytes` is refused with payload_too_large; on any failure the partial file is removed.
   */
  async receive(source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Received> {
    await mkdir(this.#incoming, { recursive: true, mode: 0o700 });
    const tmp = join(this.#incoming, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            size += chunk.length;
            if (size > maxBytes) throw new MusterError('payload_too_large', `The artifact is larger than the limit of ${maxBytes} bytes`);
            hash.update(chunk);
            yield chunk;
          }
        },
        // flush: fsync before close, so that the file is on disk before it is renamed into place.
        createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true }),
      );
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    return { tmp, sha256: hash.digest('hex'), size };
  }

  /** Moves a received file into place; when the blob is there already, the copy is dropped. */
  async settle(received: Received): Promise<void> {
    const path = this.path(received.sha256);
    if (await this.has(received.sha256, received.size)) {
      await this.discard(received);
      return;
    }
    const created = await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await rename(received.tmp, path);
    await syncDirectory(dirname(path));
    if (created) await syncDirectory(dirname(dirname(path)));
  }

  async discard(received: Received): Promise<void> {
    await rm(received.tmp, { force: true });
  }

  /** True when the blob is on disk with the expected size. */
  async has(sha256: string, size: number): Promise<boolean> {
    const found = await stat(this.path(sha256)).catch(() => null);
    return found?.isFile() === true && found.size === size;
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
  }

  /** Removes uploads that a crash left in the incoming directory. */
  async sweepIncoming(now = Date.now()): Promise<number> {
    const names = await readdir(this.#incoming).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const path = join(this.#incoming, name);
      const found = await stat(path).catch(() => null);
      if (found && now - found.mtimeMs > staleIncomingMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** Makes a rename in `dir` durable (a crash after the upload was acknowledged must not undo it). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
