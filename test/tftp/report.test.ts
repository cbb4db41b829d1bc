import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TftpTransferReport } from '../../packages/server/src/boot/tftp/types.ts';
import { eachThreadMode, fixtureFiles, packet, RawClient, type RunningTftp, rawGet, show, startTftp, waitFor } from './support.ts';

/** A report without its timing, which is checked apart: timing is never asserted as a value. */
function settled(report: TftpTransferReport) {
  const { startedAt, durationMs, ...rest } = report;
  assert.ok(startedAt instanceof Date && Math.abs(Date.now() - startedAt.getTime()) < 60_000, `startedAt ${startedAt}`);
  assert.ok(Number.isFinite(durationMs) && durationMs >= 0, `durationMs ${durationMs}`);
  return rest;
}

eachThreadMode(() => {
  describe('onTransferEnd reports every transfer once, however it ends', () => {
    let t: RunningTftp;
    const reports: TftpTransferReport[] = [];
    let client: RawClient;
    let port = 0;

    before(async () => {
      t = await startTftp({ timeoutMs: 100, retries: 1, onTransferEnd: (report) => reports.push(report) });
    });

    after(async () => {
      await t?.stop();
    });

    /** Runs a client's exchange and returns the one report it caused. */
    async function reportOf(exchange: (c: RawClient) => Promise<void>): Promise<ReturnType<typeof settled>> {
      reports.length = 0;
      client = await RawClient.open(t);
      port = client.port;
      try {
        await exchange(client);
        assert.ok(await waitFor(() => reports.length > 0 && t.server.activeTransfers === 0, 3000), 'no report');
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(reports.length, 1, `${reports.length} reports for one transfer`);
        return settled(reports[0]);
      } finally {
        client.close();
      }
    }

    const remote = () => ({ address: '127.0.0.1', port, family: 'IPv4' });

    test('a complete transfer: every byte acknowledged, with the settled options', async () => {
      const report = await reportOf(async (c) => {
        const r = await rawGet(c, 'big.bin', { blksize: '1468', windowsize: '4', tsize: '0' });
        assert.deepEqual(r.content, fixtureFiles['big.bin']);
      });
      assert.deepEqual(report, {
        request: {
          filename: 'big.bin',
          path: 'big.bin',
          mode: 'octet',
          options: { blksize: '1468', windowsize: '4', tsize: '0' },
          remote: remote(),
        },
        size: fixtureFiles['big.bin'].length,
        bytes: fixtureFiles['big.bin'].length,
        blksize: 1468,
        windowsize: 4,
        outcome: 'complete',
      });
    });

    test('a complete netascii transfer reports the converted size', async () => {
      const report = await reportOf(async (c) => {
        const r = await rawGet(c, 'cr.txt', [], { mode: 'netascii' });
        assert.deepEqual(r.content, Buffer.from('a\r\0b\r\0\r\nc\r\n', 'latin1'));
      });
      assert.equal(report.outcome, 'complete');
      assert.equal(report.size, 11);
      assert.equal(report.bytes, 11);
    });

    test("the Pi's probe: an ERROR after the first DATA is 'aborted' with the client's message", async () => {
      const report = await reportOf(async (c) => {
        await c.send(packet.rrq('big.bin', { tsize: '0', blksize: '1024' }));
        const o = await c.expect();
        assert.equal(o.packet.op, 'oack', show(o.packet));
        await c.send(packet.ack(0), o.port);
        assert.equal(show((await c.expect()).packet), 'DATA 1 (1024 bytes)');
        await c.send(packet.error(0, 'Early terminate'), o.port);
      });
      assert.deepEqual(report, {
        request: { filename: 'big.bin', path: 'big.bin', mode: 'octet', options: { tsize: '0', blksize: '1024' }, remote: remote() },
        size: fixtureFiles['big.bin'].length,
        bytes: 0,
        blksize: 1024,
        windowsize: 1,
        outcome: 'aborted',
        error: 'Early terminate',
      });
    });

    test("a client that goes silent is 'timeout', with the bytes it had acknowledged", async () => {
      const report = await reportOf(async (c) => {
        await c.send(packet.rrq('ten-blocks.bin'));
        const d1 = await c.expect();
        await c.send(packet.ack(1), d1.port);
        assert.equal(show((await c.expect()).packet), 'DATA 2 (512 bytes)');
      });
      assert.equal(report.outcome, 'timeout');
      assert.equal(report.bytes, 512);
      assert.match(report.error ?? '', /no answer/);
    });

    test("a refused option after the resolver answered is 'error'; a missing file, which the resolver refused, is not reported", async () => {
      const report = await reportOf(async (c) => {
        await c.send(packet.rrq('missing.bin'));
        assert.equal((await c.expect()).packet.op, 'error');
        await c.send(packet.rrq('exact512.bin', { blksize: '7' }));
        assert.equal((await c.expect()).packet.op, 'error');
      });
      assert.equal(report.request.path, 'exact512.bin');
      assert.equal(report.outcome, 'error');
      assert.match(report.error ?? '', /blksize/);
      assert.equal(report.bytes, 0);
    });

    test("a new request from the same port ends the transfer under way as 'aborted', and is served", async () => {
      reports.length = 0;
      const c = await RawClient.open(t);
      try {
        await c.send(packet.rrq('big.bin', { tsize: '0' }));
        assert.equal((await c.expect()).packet.op, 'oack');
        const r = await rawGet(c, 'exact1024.bin');
        assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
        assert.ok(await waitFor(() => reports.length === 2, 2000), `${reports.length} reports`);
        assert.deepEqual(
          reports.map((x) => [x.request.path, x.outcome]),
          [
            ['big.bin', 'aborted'],
            ['exact1024.bin', 'complete'],
          ],
        );
      } finally {
        c.close();
      }
    });

    test("stop() reports the transfers it ends as 'error'", async () => {
      const mine: TftpTransferReport[] = [];
      const t2 = await startTftp({ onTransferEnd: (report) => mine.push(report) });
      const c = await RawClient.open(t2);
      try {
        await c.send(packet.rrq('big.bin', { tsize: '0' }));
        assert.equal((await c.expect()).packet.op, 'oack');
        await t2.stop();
        assert.deepEqual(
          mine.map((x) => [x.outcome, x.error]),
          [['error', 'server stopped']],
        );
      } finally {
        c.close();
      }
    });

    test('a report hook that throws is told to onError and the server goes on', async () => {
      const errors: unknown[] = [];
      const t2 = await startTftp({
        onTransferEnd: () => {
          throw new Error('hook failed');
        },
        onError: (error) => errors.push(error),
      });
      const c = await RawClient.open(t2);
      try {
        for (let i = 0; i < 2; i++) assert.deepEqual((await rawGet(c, 'exact512.bin')).content, fixtureFiles['exact512.bin']);
        assert.ok(await waitFor(() => errors.length === 2, 1000));
        assert.match(String(errors[0]), /hook failed/);
      } finally {
        c.close();
        await t2.stop();
      }
    });
  });
});
