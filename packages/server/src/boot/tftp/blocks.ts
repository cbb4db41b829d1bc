import { type FileHandle, open } from 'node:fs/promises';
import { Opcode } from './packet.ts';
import type { TftpSource, TftpTransferable } from './types.ts';

/** Read ahead this much per chunk; a transfer holds at most two chunks (64 KiB a transfer, 64 MiB at 1,000). */
export const chunkBytes = 32 * 1024;

/** Fills `payloads`, in order, with the bytes from `offset` on; returns how many it filled, at once or later. */
export interface BlockReader {
  fill(offset: number, payloads: Buffer[]): number | Promise<number>;
  close(): Promise<void>;
}

/** Reads a file with one readv per chunk straight into the DATA packets; the file is opened on the first read. */
export function fileReader(path: string): BlockReader {
  let handle: Promise<FileHandle> | null = null;
  return {
    fill(offset, payloads) {
      handle ??= open(path, 'r');
      return handle.then((h) => h.readv(payloads, offset)).then((r) => r.bytesRead);
    },
    async close() {
      if (handle)
        await handle.then(
          (h) => h.close(),
          () => {},
        );
    },
  };
}

function copyInto(data: Uint8Array, from: number, payloads: Buffer[]): number {
  let at = from;
  for (const payload of payloads) {
    const part = data.subarray(at, at + payload.length);
    payload.set(part);
    at += part.length;
    if (part.length < payload.length) break;
  }
  return at - from;
}

/** Copies from bytes in memory, synchronously. */
export function bytesReader(bytes: Uint8Array): BlockReader {
  return { fill: (offset, payloads) => copyInto(bytes, offset, payloads), close: async () => {} };
}

/** Reads through any TftpSource: a chunk at a time through peek or read, copied into the packets. */
export function sourceReader(source: TftpSource): BlockReader {
  return {
    fill(offset, payloads) {
      const length = payloads.reduce((sum, p) => sum + p.length, 0);
      const peeked = source.peek?.(offset, length);
      if (peeked) return copyInto(peeked, 0, payloads);
      return source.read(offset, length).then((data) => copyInto(data, 0, payloads));
    },
    close: async () => source.close?.(),
  };
}

/** The reader for a serializable source (a worker thread opens it anew). */
export function transferableReader(transferable: TftpTransferable): BlockReader {
  return 'path' in transferable ? fileReader(transferable.path) : bytesReader(transferable.bytes);
}

interface Chunk {
  index: number;
  buffer: Buffer | null;
  packets: Buffer[];
  /** The views of a buffer of whole blocks (packets, payloads), kept while the buffer is reused. */
  views: { packets: Buffer[]; payloads: Buffer[] } | null;
  loading: Promise<void> | null;
}

/**
 * A transfer's file as ready-made DATA packets, read a chunk at a time into two buffers: one holds the blocks being
 * sent, the other the next chunk, read ahead while the first is sent. Sending a block is a lookup, with no copy, no
 * allocation and no promise. A buffer is reused only when the socket has no send queued that might still read it.
 */
export class BlockCache {
  readonly #reader: BlockReader;
  readonly #size: number;
  readonly #blksize: number;
  readonly #perChunk: number;
  readonly #finalBlock: number;
  readonly #chunks: [Chunk, Chunk];
  readonly #canReuse: () => boolean;

  constructor(reader: BlockReader, size: number, blksize: number, canReuse: () => boolean) {
    this.#reader = reader;
    this.#size = size;
    this.#blksize = blksize;
    // readv takes at most IOV_MAX (1,024) buffers.
    this.#perChunk = Math.min(1024, Math.max(1, Math.floor(chunkBytes / blksize)));
    // A file whose size is a multiple of the block size ends with an empty block.
    this.#finalBlock = Math.floor(size / blksize) + 1;
    this.#chunks = [this.#empty(), this.#empty()];
    this.#canReuse = canReuse;
  }

  get finalBlock(): number {
    return this.#finalBlock;
  }

  #empty(): Chunk {
    return { index: -1, buffer: null, packets: [], views: null, loading: null };
  }

  #chunkOf(block: number): number {
    return Math.floor((block - 1) / this.#perChunk);
  }

  /** The DATA packet of `block` when it is in memory, else null. */
  packet(block: number): Buffer | null {
    const index = this.#chunkOf(block);
    const [a, b] = this.#chunks;
    const chunk = a.index === index ? a : b.index === index ? b : null;
    if (!chunk || chunk.loading) return null;
    return chunk.packets[block - 1 - index * this.#perChunk];
  }

  /** Loads the chunk holding `block`, keeping the one holding `needed` (the first block not acknowledged) if it can. */
  load(block: number, needed: number): Promise<void> {
    const index = this.#chunkOf(block);
    const held = this.#chunks.find((c) => c.index === index);
    if (held) return held.loading ?? Promise.resolve();
    const idle = this.#chunks.filter((c) => !c.loading);
    if (idle.length === 0) return Promise.race(this.#chunks.map((c) => c.loading?.catch(() => {}))).then(() => {});
    const keep = this.#chunkOf(needed);
    const rank = (c: Chunk) => (c.index < 0 ? 0 : c.index < keep ? 1 : c.index !== keep ? 2 : 3);
    const victim = idle.reduce((best, c) => (rank(c) < rank(best) ? c : best));
    return this.#fill(victim, index) ?? Promise.resolve();
  }

  /** Starts reading the chunk after `block`'s into a buffer that holds nothing still needed. */
  prefetch(block: number, needed: number): void {
    const index = this.#chunkOf(block) + 1;
    if (index * this.#perChunk + 1 > this.#finalBlock || this.#chunks.some((c) => c.index === index)) return;
    const keep = this.#chunkOf(needed);
    const free = this.#chunks.find((c) => !c.loading && c.index < keep);
    if (free) this.#fill(free, index)?.catch(() => {});
  }

  /** The DATA packets of `count` blocks from `first` laid out in `buffer` (opcodes written), and their payloads. */
  #views(buffer: Buffer, first: number, count: number): { packets: Buffer[]; payloads: Buffer[] } {
    const slot = this.#blksize + 4;
    const packets: Buffer[] = [];
    const payloads: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const start = i * slot;
      const length = Math.max(0, Math.min(this.#blksize, this.#size - (first + i - 1) * this.#blksize));
      buffer.writeUInt16BE(Opcode.data, start);
      packets.push(buffer.subarray(start, start + 4 + length));
      if (length > 0) payloads.push(buffer.subarray(start + 4, start + 4 + length));
    }
    return { packets, payloads };
  }

  /** Lays out the chunk's DATA packets (block numbers written now) and reads the payloads into them. */
  #fill(chunk: Chunk, index: number): Promise<void> | null {
    const first = index * this.#perChunk + 1;
    const count = Math.min(this.#perChunk, this.#finalBlock - first + 1);
    const slot = this.#blksize + 4;
    if (!chunk.buffer || !this.#canReuse()) {
      chunk.buffer = Buffer.allocUnsafe(Math.min(this.#perChunk, this.#finalBlock) * slot);
      chunk.views = null;
    }
    const buffer = chunk.buffer;
    const whole = count === this.#perChunk && (first + count - 1) * this.#blksize <= this.#size;
    // A chunk of whole blocks in a reused buffer has the same views as before: only the block numbers change.
    const views = whole && chunk.views ? chunk.views : this.#views(buffer, first, count);
    if (whole) chunk.views = views;
    for (let i = 0; i < count; i++) buffer.writeUInt16BE((first + i) & 0xffff, i * slot + 2);
    const { packets, payloads } = views;
    const expected = Math.max(0, Math.min(count * this.#blksize, this.#size - (first - 1) * this.#blksize));
    chunk.index = index;
    chunk.packets = packets;
    // A file that shrank since its size was taken must not send the stale bytes left in a reused buffer.
    const settle = (filled: number) => {
      if (filled === expected) return;
      chunk.index = -1;
      throw new Error(`file ended early: ${filled} of ${expected} bytes at block ${first}`);
    };
    const filled = expected === 0 ? 0 : this.#reader.fill((first - 1) * this.#blksize, payloads);
    if (typeof filled === 'number') {
      try {
        settle(filled);
        return null;
      } catch (error) {
        return Promise.reject(error);
      }
    }
    chunk.loading = filled.then(
      (n) => {
        chunk.loading = null;
        settle(n);
      },
      (error: unknown) => {
        chunk.loading = null;
        chunk.index = -1;
        throw error;
      },
    );
    return chunk.loading;
  }

  close(): Promise<void> {
    return this.#reader.close();
  }
}
