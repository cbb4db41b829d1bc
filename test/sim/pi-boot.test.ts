import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PiModel } from '@muster/sim/config-txt.ts';
import { simulatePi } from '@muster/sim/pi-boot.ts';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { runPiStorm } from '@muster/sim/pi-storm.ts';
import { type SampleTree, writeSampleTree } from '@muster/sim/pi-tree.ts';
import { bootRoot, startMusterTftp, startTftpdHpa, type TftpPeer } from './support.ts';

const models: PiModel[] = ['pi4', 'pi5'];
// Pi 4 serials from 5e000001, Pi 5 from 5e100001; 40 of each, the last two without a kernel.
const serialBase: Record<PiModel, number> = { pi4: 0x5e000001, pi5: 0x5e100001 };
const perModel = 40;

// Each single boot comes from an address of its own: muster's server limits the request rate per address.
let nextAddress = 1;
const ownAddress = () => `127.200.0.${nextAddress++}`;

for (const peerName of ['tftpd-hpa', 'muster'] as const) {
  describe(`simulated Pis against ${peerName}`, () => {
    const { root, cleanup } = bootRoot();
    const trees = {} as Record<PiModel, SampleTree>;
    const seen: string[] = [];
    let peer: TftpPeer;

    before(async () => {
      for (const model of models) {
        const serials = piSerials(model, serialBase[model], perModel).map((s) => s.serial);
        const sizes = { kernelBytes: 600_000, initramfsBytes: 300_000 };
        trees[model] = writeSampleTree(root, { model, serials: serials.slice(0, -2), ...sizes });
        const kernel = model === 'pi4' ? 'kernel8.img' : 'kernel_2712.img';
        writeSampleTree(root, { model, serials: serials.slice(-2), ...sizes, omit: [kernel], directory: `.broken-${model}` });
      }
      peer = peerName === 'muster' ? await startMusterTftp(root, seen) : await startTftpdHpa(root);
    });

    after(async () => {
      await peer?.stop();
      cleanup();
    });

    for (const model of models) {
      test(`a ${model} boots: every file it reads arrives whole`, async () => {
        const serial = piSerials(model, serialBase[model], 1)[0].serial;
        const result = await simulatePi({ host: peer.host, port: peer.port, serial, model, hashFiles: true, localAddress: ownAddress() });
        assert.deepEqual(
          { success: result.success, failures: result.failures, firstPacketAnswered: result.firstPacketAnswered },
          { success: true, failures: [], firstPacketAnswered: true },
        );
        const reads = result.files.filter((file) => file.purpose === 'read' && file.error === null);
        const names = new Set(reads.map((file) => file.name.slice(serial.length + 1).replace(/^\//, '')));
        assert.deepEqual([...names].sort(), Object.keys(trees[model].files).sort(), 'every file of the tree was read');
        for (const file of reads) {
          const name = file.name.slice(serial.length + 1).replace(/^\//, '');
          assert.equal(file.sha256, trees[model].sha256[name], `${file.name} arrived whole`);
        }
      });
    }

    test('the Pi 5 reads config.txt with a doubled slash, and it arrives', async () => {
      const serial = piSerials('pi5', serialBase.pi5, 1)[0].serial;
      const result = await simulatePi({ host: peer.host, port: peer.port, serial, model: 'pi5', localAddress: ownAddress() });
      const doubled = result.files.find((file) => file.name === `${serial}//config.txt`);
      assert.deepEqual(
        { purpose: doubled?.purpose, bytes: doubled?.bytes, error: doubled?.error },
        { purpose: 'read', bytes: trees.pi5.files['config.txt'].length, error: null },
      );
      if (peerName === 'muster') assert.ok(seen.includes(`${serial}//config.txt`), 'sent on the wire as is');
    });

    test('a Pi whose tree lacks the kernel fails, and the failure names the file', async () => {
      const serial = piSerials('pi4', serialBase.pi4, perModel)[perModel - 1].serial;
      const result = await simulatePi({ host: peer.host, port: peer.port, serial, model: 'pi4', localAddress: ownAddress() });
      assert.equal(result.success, false);
      assert.equal(result.failures.length, 1);
      assert.equal(result.failures[0].file, `${serial}/kernel8.img`);
      assert.match(result.failures[0].error, /^ERROR 1 /);
    });

    for (const model of models) {
      test(`a storm of ${perModel} ${model}s at once: all but the two without a kernel boot, each answered on its first packet`, async () => {
        const summary = await runPiStorm({
          host: peer.host,
          port: peer.port,
          count: perModel,
          model,
          serialStart: serialBase[model],
          keepResults: true,
        });
        // Without kernel_2712.img a Pi 5 falls back to kernel8.img, which is missing too.
        const kernel = 'kernel8.img';
        const broken = piSerials(model, serialBase[model], perModel).slice(-2);
        assert.deepEqual(
          { count: summary.count, succeeded: summary.succeeded, failed: summary.failed, firstPacketAnswered: summary.firstPacketAnswered },
          { count: perModel, succeeded: perModel - 2, failed: 2, firstPacketAnswered: perModel },
        );
        assert.deepEqual(
          summary.failures.map(({ serial, file }) => ({ serial, file })),
          broken.map(({ serial }) => ({ serial, file: `${serial}/${kernel}` })),
        );
        const expectedBytes = summary.pis?.filter((pi) => pi.success).every((pi) => pi.bytes > 900_000);
        assert.equal(expectedBytes, true);
        assert.ok(summary.bootMs.median > 0 && summary.bootMs.median <= summary.bootMs.p95 && summary.bootMs.p95 <= summary.bootMs.max);
      });
    }

    test('a storm with arrivals spread over a second and a concurrency bound still boots them all', async () => {
      const summary = await runPiStorm({
        host: peer.host,
        port: peer.port,
        count: 10,
        model: 'pi5',
        serialStart: serialBase.pi5,
        arrivalSeconds: 1,
        concurrency: 3,
      });
      assert.deepEqual({ succeeded: summary.succeeded, failed: summary.failed }, { succeeded: 10, failed: 0 });
    });
  });
}
