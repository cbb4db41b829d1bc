import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Harness } from '../support/harness.ts';

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Stores files as artifacts and returns the tree manifest for them; names ending in .liquid become templates. */
export async function treeFiles(h: Harness, files: Record<string, Buffer | string>) {
  const manifest = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content);
    const { artifact } = await h.muster.artifacts.addStream('test', Readable.from([data]), { name: name.split('/').pop() });
    const template = name.endsWith('.liquid');
    manifest.push({ path: template ? name.slice(0, -'.liquid'.length) : name, sha256: artifact.sha256, size: artifact.size, template });
  }
  return manifest;
}

export interface TftpFetch {
  code: number;
  data: Buffer;
  stderr: string;
}

/** Fetches one file from muster's TFTP door with curl, as a bootloader would (blksize 1468, tsize). */
export function tftpGet(port: number, path: string): Promise<TftpFetch> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-s', '-S', '--max-time', '20', '--tftp-blksize', '1468', '-o', '-', `tftp://127.0.0.1:${port}/${path}`],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, data: stdout, stderr: stderr.toString() }),
    );
  });
}

/** Waits for a condition that the server reaches on its own time (a timeline written after a transfer ends). */
export async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
