import { open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { TftpError, TftpErrorCode, type TftpResolver, type TftpSource } from './types.ts';

// Read ahead this much per transfer: one thread-pool round trip serves many blocks (64 MiB at 1,000 transfers).
const readAhead = 64 * 1024;

/** Reads a file through one open handle, a read-ahead chunk at a time; never the whole file. */
export async function fileSource(path: string): Promise<TftpSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  let chunk = { offset: 0, data: Buffer.alloc(0) };
  const cached = (offset: number, end: number) => offset >= chunk.offset && end <= chunk.offset + chunk.data.length;
  return {
    size,
    peek(offset, length) {
      const end = Math.min(offset + length, size);
      return cached(offset, end) ? chunk.data.subarray(offset - chunk.offset, end - chunk.offset) : null;
    },
    async read(offset, length) {
      const end = Math.min(offset + length, size);
      if (!cached(offset, end)) {
        const data = Buffer.allocUnsafe(Math.max(0, Math.min(Math.max(readAhead, length), size - offset)));
        const { bytesRead } = await handle.read(data, 0, data.length, offset);
        chunk = { offset, data: data.subarray(0, bytesRead) };
      }
      return chunk.data.subarray(offset - chunk.offset, end - chunk.offset);
    },
    close: () => handle.close(),
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
