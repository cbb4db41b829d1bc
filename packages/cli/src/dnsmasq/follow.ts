import { type FSWatcher, watch } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export interface FollowOptions {
  /** Read what the file already holds; by default only lines written after the start count. */
  fromStart?: boolean;
  onLine: (line: string) => void;
  /** A read that failed; following goes on. */
  onError?: (error: Error) => void;
}

const chunkSize = 64 * 1024;
/** Longer lines are not dnsmasq's: dropped, so a file without newlines cannot fill memory. */
const maxLineLength = 64 * 1024;
const seenLength = 64;

/**
 * Follows a log file as `tail -F` does, woken by inotify (fs.watch on the file and on its directory), never by a
 * timer: from its end (or start), across rotation by rename (the old file is read to its end once the new one
 * appears), by copytruncate (a file that shrank is read again from its start) and by delete, and a file that
 * does not exist yet. Lines are whole: a write that ends mid-line waits for the rest.
 */
export class LogFollower {
  readonly path: string;
  readonly #options: FollowOptions;
  #handle: FileHandle | null = null;
  #inode = -1;
  #position = 0;
  /** The last bytes read, ending at #position: if the file no longer holds them there, it was rewritten. */
  #seen: Buffer = Buffer.alloc(0);
  #decoder = new StringDecoder('utf8');
  #partial = '';
  /** Starting at the end of a file whose last line is unfinished: its rest is not a line. */
  #skipToNewline = false;
  #dirWatcher: FSWatcher | null = null;
  #fileWatcher: FSWatcher | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #firstOpen = true;

  private constructor(path: string, options: FollowOptions) {
    this.path = resolve(path);
    this.#options = options;
  }

  /** Starts following; resolves once the file (if it exists) is open and what it holds is read or skipped. */
  static async start(path: string, options: FollowOptions): Promise<LogFollower> {
    const follower = new LogFollower(path, options);
    const name = basename(follower.path);
    // The directory first, so a file created between the first look and the watch is not missed.
    follower.#dirWatcher = watch(dirname(follower.path), { persistent: true }, (_event, file) => {
      if (file === null || file === name) follower.#wake();
    });
    follower.#dirWatcher.on('error', (error) => follower.#options.onError?.(error));
    await follower.#wake();
    // A file that appears later was written for us from its first byte.
    follower.#firstOpen = false;
    return follower;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#dirWatcher?.close();
    this.#fileWatcher?.close();
    await this.#running;
    await this.#handle?.close();
    this.#handle = null;
  }

  /** Runs one catch-up at a time; a wake-up during one runs another after it. */
  #wake(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#catchUp();
        } catch (error) {
          this.#options.onError?.(error as Error);
        }
      } while (this.#again && !this.#closed);
      this.#running = null;
    })();
    return this.#running;
  }

  async #catchUp(): Promise<void> {
    if (this.#closed) return;
    const current = await stat(this.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (this.#handle && current && current.ino !== this.#inode) {
      // Renamed away or deleted, and a new file is there: finish the old one, then start the new one.
      await this.#readToEnd();
      await this.#switchTo(null);
    }
    if (!this.#handle) {
      if (!current) return;
      await this.#switchTo(await open(this.path, 'r'));
    }
    const size = (await this.#handle!.stat()).size;
    // Truncated (copytruncate), perhaps written again past where we were before we looked: start over.
    if (size < this.#position || !(await this.#stillHolds(this.#handle!))) {
      this.#position = 0;
      this.#seen = Buffer.alloc(0);
      this.#partial = '';
      this.#skipToNewline = false;
    }
    await this.#readToEnd();
  }

  async #switchTo(handle: FileHandle | null): Promise<void> {
    this.#fileWatcher?.close();
    this.#fileWatcher = null;
    await this.#handle?.close();
    this.#handle = handle;
    this.#partial = '';
    this.#decoder = new StringDecoder('utf8');
    this.#skipToNewline = false;
    this.#seen = Buffer.alloc(0);
    if (!handle) return;
    const info = await handle.stat();
    this.#inode = info.ino;
    this.#position = this.#firstOpen && !this.#options.fromStart ? info.size : 0;
    this.#seen = await this.#bytesBefore(handle, this.#position);
    this.#skipToNewline = this.#seen.length > 0 && this.#seen[this.#seen.length - 1] !== 0x0a;
    this.#firstOpen = false;
    // Watches the inode: after a rename it still reports writes that land in the old file.
    this.#fileWatcher = watch(this.path, { persistent: false }, () => this.#wake());
    this.#fileWatcher.on('error', () => {});
  }

  async #bytesBefore(handle: FileHandle, position: number): Promise<Buffer> {
    const length = Math.min(seenLength, position);
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, position - length);
    return bytes.subarray(0, bytesRead);
  }

  async #stillHolds(handle: FileHandle): Promise<boolean> {
    if (this.#seen.length === 0) return true;
    return (await this.#bytesBefore(handle, this.#position)).equals(this.#seen);
  }

  async #readToEnd(): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    const buffer = Buffer.allocUnsafe(chunkSize);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkSize, this.#position);
      if (bytesRead === 0) return;
      this.#position += bytesRead;
      const tail = buffer.subarray(Math.max(0, bytesRead - seenLength), bytesRead);
      this.#seen = Buffer.concat([this.#seen, tail]).subarray(-seenLength);
      this.#takeText(this.#decoder.write(buffer.subarray(0, bytesRead)));
    }
  }

  #takeText(text: string): void {
    const all = this.#partial + text;
    let start = 0;
    let newline = all.indexOf('\n', start);
    while (newline !== -1) {
      const line = all.slice(start, newline);
      if (this.#skipToNewline) this.#skipToNewline = false;
      else if (!this.#closed) this.#options.onLine(line);
      start = newline + 1;
      newline = all.indexOf('\n', start);
    }
    this.#partial = all.slice(start);
    if (this.#partial.length > maxLineLength) {
      this.#partial = '';
      this.#skipToNewline = true;
    }
  }
}
