import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { TftpError, TftpErrorCode, type TftpResolver, type TftpSource } from './types.ts';

// Read ahead this much when read through read() on the main thread; transfers read through blocks.ts instead.
const readAhead = 64 * 1024;

/**
 * A file by its path. Only its size is taken here: the transfer opens it where it runs (a worker thread, through
 * `transferable`), and read() opens it on first use, a read-ahead chunk at a time, never whole.
 */
export async function fileSource(path: string): Promise<TftpSource> {
  const { size } = await stat(path);
  let handle: Promise<FileHandle> | null = null;
  let chunk = { offset: 0, data: Buffer.alloc(0) };
  const cached = (offset: number, end: number) => offset >= chunk.offset && end <= chunk.offset + chunk.data.length;
  return {
    size,
    transferable: { path },
    peek(offset, length) {
      const end = Math.min(offset + length, size);
      return cached(offset, end) ? chunk.data.subarray(offset - chunk.offset, end - chunk.offset) : null;
    },
    async read(offset, length) {
      const end = Math.min(offset + length, size);
      if (!cached(offset, end)) {
        handle ??= open(path, 'r');
        const data = Buffer.allocUnsafe(Math.max(0, Math.min(Math.max(readAhead, length), size - offset)));
        const { bytesRead } = await (await handle).read(data, 0, data.length, offset);
        chunk = { offset, data: data.subarray(0, bytesRead) };
      }
      return chunk.data.subarray(offset - chunk.offset, end - chunk.offset);
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

/** Bytes in memory, such as a rendered template; they go to a worker thread as a copy. */
export function bufferSource(bytes: Buffer): TftpSource {
  return {
    size: bytes.length,
    transferable: { bytes },
    peek: (offset, length) => bytes.subarray(offset, offset + length),
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** Serves regular files below `root` by their safe path; a symlink that leads outside is refused. */
export function directoryResolver(root: string): TftpResolver {
  const realRoot = realpath(root);
  return async (request) => {
    const base = await realRoot;
    let resolved: string;
    try {
      resolved = await realpath(join(base, request.path));
    } catch {
      throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
    }
    if (resolved !== base && !resolved.startsWith(base + sep)) throw new TftpError(TftpErrorCode.accessViolation, 'Access violation');
    if (!(await stat(resolved)).isFile()) throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
    return fileSource(resolved);
  };
}
