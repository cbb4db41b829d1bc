import { open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { TftpError, TftpErrorCode, type TftpResolver, type TftpSource } from './types.ts';

/** Reads a file through one open handle, block by block; nothing is held in memory. */
export async function fileSource(path: string): Promise<TftpSource> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    async read(offset, length) {
      const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(length, size - offset)));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
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
