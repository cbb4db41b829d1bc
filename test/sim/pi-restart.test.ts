import assert from 'node:assert/strict';
import { test } from 'node:test';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { runPiStorm } from '@muster/sim/pi-storm.ts';
import { writeSampleTree } from '@muster/sim/pi-tree.ts';
import { directoryResolver } from '../../packages/server/src/boot/tftp/directory.ts';
import { TftpServer } from '../../packages/server/src/boot/tftp/server.ts';
import { TftpError, TftpErrorCode, type TftpRequest } from '../../packages/server/src/boot/tftp/types.ts';
import { bootRoot } from './support.ts';

/** A server that answers each Pi's first request for its kernel with ERROR 1, and every later one with the file. */
async function kernelMissingOnce(root: string) {
  const files = directoryResolver(root);
  const refused = new Set<string>();
  const server = new TftpServer({
    host: '127.0.0.1',
    port: 0,
    resolve: (request: TftpRequest) => {
      if (request.path.endsWith('/kernel8.img') && !refused.has(request.path)) {
        refused.add(request.path);
        throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
      }
      return files(request);
    },
  });
  const { port } = await server.start();
  return { port, stop: () => server.stop() };
}

for (const restart of [true, false]) {
  test(
    restart
      ? 'a Pi whose boot failed starts it again, as BOOT_ORDER 0xf restarts, and the second attempt boots'
      : 'without restarts a failed boot stays failed: one attempt per Pi',
    async () => {
      const { root, cleanup } = bootRoot();
      const serialStart = restart ? 0x5e400001 : 0x5e410001;
      const serials = piSerials('pi4', serialStart, 3).map((s) => s.serial);
      writeSampleTree(root, { model: 'pi4', serials, kernelBytes: 200_000, initramfsBytes: 100_000 });
      const server = await kernelMissingOnce(root);
      try {
        const summary = await runPiStorm({
          host: '127.0.0.1',
          port: server.port,
          count: 3,
          model: 'pi4',
          serialStart,
          restartDelayMs: restart ? 100 : null,
          deadlineSeconds: 60,
        });
        assert.deepEqual(
          { succeeded: summary.succeeded, attempts: summary.attempts },
          restart ? { succeeded: 3, attempts: 6 } : { succeeded: 0, attempts: 3 },
        );
      } finally {
        await server.stop();
        cleanup();
      }
    },
  );
}
