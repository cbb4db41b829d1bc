import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { runPiStorm } from '@muster/sim/pi-storm.ts';
import { writeSampleTree } from '@muster/sim/pi-tree.ts';
import { directoryResolver } from '../../packages/server/src/boot/tftp/directory.ts';
import { minActive } from '../../packages/server/src/boot/tftp/schedule.ts';
import { TftpServer } from '../../packages/server/src/boot/tftp/server.ts';
import type { TftpTransferReport } from '../../packages/server/src/boot/tftp/types.ts';
import { bootRoot } from '../sim/support.ts';
import { packet, RawClient, type Received, show, startTftp, waitFor, withTimeout } from './support.ts';

const blksize = 1468;

/** Asks for big.bin (3 MiB) with blksize 1468 and acknowledges the OACK; resolves with DATA 1. */
async function firstBlock(client: RawClient): Promise<Received> {
  await client.send(packet.rrq('big.bin', { blksize: String(blksize) }));
  const oack = await client.expect();
  assert.equal(oack.packet.op, 'oack', show(oack.packet));
  await client.send(packet.ack(0), oack.port);
  const data = await client.expect();
  assert.equal(show(data.packet), `DATA 1 (${blksize} bytes)`);
  return data;
}

// One thread of transfers (the main thread, or one worker): each thread admits its own transfers.
for (const workers of [0, 1]) {
  describe(`storms, transfers on ${workers === 0 ? 'the main thread' : 'one worker thread'}`, () => {
    test(`past the first ${minActive} large transfers, the next waits at its first block: its repeated ACKs get nothing, then ERROR 0 once its client could not get the file in time`, async () => {
      const reports: TftpTransferReport[] = [];
      const server = await startTftp({ workers, fileLimitMs: 1500, onTransferEnd: (report) => reports.push(report) });
      const clients: RawClient[] = [];
      try {
        // Admitted ones whose clients acknowledge a block only every 200 ms: the thread's throughput is tiny.
        const slow: { client: RawClient; port: number; block: number }[] = [];
        for (let i = 0; i < minActive; i++) {
          const client = await RawClient.open(server);
          clients.push(client);
          const data = await firstBlock(client);
          await client.send(packet.ack(1), data.port);
          const next = await client.expect();
          assert.equal(show(next.packet), `DATA 2 (${blksize} bytes)`, 'an admitted transfer goes on');
          slow.push({ client, port: data.port, block: 2 });
        }
        const keepSlow = setInterval(() => {
          for (const s of slow) {
            void s.client.send(packet.ack(s.block++), s.port).catch(() => {});
            void s.client.receive(10).catch(() => {});
          }
        }, 200);
        try {
          const waiting = await RawClient.open(server);
          clients.push(waiting);
          const data = await firstBlock(waiting);
          await waiting.send(packet.ack(1), data.port);
          // The client repeats its ACK as a bootloader does; the server sends nothing until it gives the transfer up.
          const seen: string[] = [];
          for (let i = 0; i < 4; i++) {
            const got = await waiting.receive(250);
            if (got) seen.push(show(got.packet));
            if (got?.packet.op === 'error') break;
            await waiting.send(packet.ack(1), data.port);
          }
          const last = seen.length === 0 ? await waiting.expect(3000) : null;
          if (last) seen.push(show(last.packet));
          assert.deepEqual(seen, ['ERROR 0 "Server busy; try again later"']);
        } finally {
          clearInterval(keepSlow);
        }
        assert.ok(await waitFor(() => reports.length >= 1, 2000), 'the refused transfer is reported');
        assert.deepEqual(
          reports.map((r) => ({ outcome: r.outcome, error: r.error, bytes: r.bytes })),
          [{ outcome: 'timeout', error: "its client's time for the file would run out before its turn", bytes: blksize }],
        );
      } finally {
        for (const client of clients) client.close();
        await server.stop();
      }
    });

    test("a transfer whose client's time for the file has run out ends at its next silence, sending nothing again", async () => {
      const reports: TftpTransferReport[] = [];
      const server = await startTftp({ workers, fileLimitMs: 300, timeoutMs: 1000, onTransferEnd: (report) => reports.push(report) });
      const client = await RawClient.open(server);
      try {
        await firstBlock(client);
        // Silence: the client gave up. Before, DATA 1 went out again after 1 s, 2 s, 4 s ...
        const late = await client.collect(1600);
        assert.deepEqual(
          late.map((r) => show(r.packet)),
          [],
        );
        assert.ok(await waitFor(() => reports.length === 1, 1000));
        assert.deepEqual(
          reports.map((r) => ({ outcome: r.outcome, error: r.error })),
          [{ outcome: 'timeout', error: "no answer, and its client's time for the file ran out" }],
        );
      } finally {
        client.close();
        await server.stop();
      }
    });
  });
}

describe('a storm of simulated Pi 4s against a server short of throughput', () => {
  test('60 Pis at once with a 3 s limit per file: every one boots, each answered on its first packet', async () => {
    const { root, cleanup } = bootRoot();
    const count = 60;
    const serialStart = 0x5e300001;
    const serials = piSerials('pi4', serialStart, count).map((s) => s.serial);
    // About 3.9 MB a boot (start4.elf 2.25 MB, a 1.2 MB kernel, a 0.4 MB initramfs): 230 MB in all, which one
    // thread cannot move in 3 s, so served evenly every Pi would miss the limit on start4.elf together.
    writeSampleTree(root, { model: 'pi4', serials, kernelBytes: 1_200_000, initramfsBytes: 400_000 });
    const outcomes = new Map<string, number>();
    const server = new TftpServer({
      host: '127.0.0.1',
      port: 0,
      resolve: directoryResolver(root),
      workers: 1,
      fileLimitMs: 3000,
      onTransferEnd: (report) => outcomes.set(report.outcome, (outcomes.get(report.outcome) ?? 0) + 1),
    });
    const { port } = await server.start();
    try {
      const summary = await withTimeout(
        runPiStorm({
          host: '127.0.0.1',
          port,
          count,
          model: 'pi4',
          serialStart,
          fileTimeoutMs: 3000,
          restartDelayMs: 500,
          deadlineSeconds: 60,
        }),
        80_000,
        'the storm',
      );
      assert.deepEqual(
        { succeeded: summary.succeeded, firstPacketAnswered: summary.firstPacketAnswered },
        { succeeded: count, firstPacketAnswered: count },
        JSON.stringify(summary.failures.slice(0, 5)),
      );
      assert.equal(outcomes.get('error') ?? 0, 0, 'no transfer ended in a server error');
    } finally {
      await server.stop();
      cleanup();
    }
  });
});
