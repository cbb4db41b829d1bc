import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { directoryResolver } from '@muster/server/boot/tftp/directory.ts';
import { TftpServer } from '@muster/server/boot/tftp/server.ts';
import type { PiModel } from './config-txt.ts';
import { type PiBootResult, simulatePi } from './pi-boot.ts';
import { boardSerial, parseSerialStart, piSerials } from './pi-serial.ts';
import { type SampleTreeOptions, writeSampleTree } from './pi-tree.ts';

const host = '127.0.0.1';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** muster's TFTP server on a sample tree, recording every file name as the client sent it. */
async function serve(tree: Omit<SampleTreeOptions, 'kernelBytes' | 'initramfsBytes'>) {
  const root = mkdtempSync(join(tmpdir(), 'muster-sim-pi-'));
  const sample = writeSampleTree(root, { kernelBytes: 300_000, initramfsBytes: 200_000, ...tree });
  const requested: string[] = [];
  const options: Record<string, string>[] = [];
  const files = directoryResolver(root);
  const server = new TftpServer({
    host,
    port: 0,
    resolve: (request) => {
      requested.push(request.filename);
      options.push(request.options);
      return files(request);
    },
  });
  const { port } = await server.start();
  cleanups.push(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });
  return { root, port, requested, options, sample };
}

/** The boot as [purpose, name] pairs, with the error of any request that did not succeed. */
function steps(result: PiBootResult): string[] {
  return result.files.map((file) => `${file.purpose} ${file.name}${file.error ? ` (${file.error})` : ''}`);
}

const notFound = '(ERROR 1 File not found)';

describe('simulatePi', () => {
  test('a Pi 4 asks for the files a real one asks for, in order, with the bootloader and start4.elf block sizes', async () => {
    const s = '5e000001';
    const { port, requested, options, sample } = await serve({ model: 'pi4', serials: [s] });
    const result = await simulatePi({ host, port, serial: s, model: 'pi4', hashFiles: true });
    assert.deepEqual(steps(result), [
      `probe ${s}/start4.elf`,
      `read ${s}/config.txt`,
      `read ${s}/pieeprom.sig ${notFound}`,
      `read ${s}/recover4.elf ${notFound}`,
      `read ${s}/recovery.elf ${notFound}`,
      `read ${s}/start4.elf`,
      `read ${s}/fixup4.dat`,
      `size ${s}/recovery.elf ${notFound}`,
      `size ${s}/config.txt`,
      `read ${s}/config.txt`,
      `size ${s}/dt-blob.bin ${notFound}`,
      `size ${s}/recovery.elf ${notFound}`,
      `size ${s}/config.txt`,
      `read ${s}/config.txt`,
      `size ${s}/bootcfg.txt ${notFound}`,
      `size ${s}/bcm2711-rpi-4-b.dtb`,
      `read ${s}/bcm2711-rpi-4-b.dtb`,
      `size ${s}/overlays/overlay_map.dtb`,
      `read ${s}/overlays/overlay_map.dtb`,
      `size ${s}/config.txt`,
      `read ${s}/config.txt`,
      `size ${s}/overlays/vc4-kms-v3d.dtbo`,
      `read ${s}/overlays/vc4-kms-v3d.dtbo`,
      `size ${s}/cmdline.txt`,
      `read ${s}/cmdline.txt`,
      `size ${s}/recovery8.img ${notFound}`,
      `size ${s}/kernel8.img`,
      `read ${s}/kernel8.img`,
      `size ${s}/armstub8-gic.bin ${notFound}`,
      `size ${s}/initramfs8`,
      `read ${s}/initramfs8`,
    ]);
    assert.deepEqual(
      requested,
      result.files.map((file) => file.name),
      'the server saw exactly these requests',
    );
    assert.deepEqual(
      options,
      result.files.map((file) => ({ tsize: '0', blksize: file.stage === 'bootloader' ? '1468' : '1024' })),
      'tsize on every request; 1468-byte blocks from the bootloader, 1024 from start4.elf',
    );
    assert.deepEqual(
      { success: result.success, firstPacketAnswered: result.firstPacketAnswered, prefix: result.prefix, failures: result.failures },
      { success: true, firstPacketAnswered: true, prefix: `${s}/`, failures: [] },
    );
    for (const file of result.files.filter((f) => f.purpose === 'read' && !f.error)) {
      const name = file.name.slice(s.length + 1);
      assert.equal(file.sha256, sample.sha256[name], `${name} arrived whole`);
      assert.equal(file.bytes, sample.files[name].length, name);
    }
    assert.deepEqual(
      [...new Set(result.files.map((file) => file.stage))],
      ['bootloader', 'firmware'],
      'bootloader requests come first, then start4.elf',
    );
  });

  test('the start4.elf probe stops after one block of 1468 bytes', async () => {
    const s = '5e000002';
    const { port } = await serve({ model: 'pi4', serials: [s] });
    const result = await simulatePi({ host, port, serial: s, model: 'pi4' });
    assert.deepEqual(result.files[0], { ...result.files[0], name: `${s}/start4.elf`, purpose: 'probe', bytes: 1468, error: null });
    const firmwareRead = result.files.find(
      (file) => file.stage === 'firmware' && file.purpose === 'read' && file.name.endsWith('kernel8.img'),
    );
    assert.equal(firmwareRead?.bytes, 300_000);
  });

  test('a Pi 5 has no start4.elf: it probes config.txt first and reads it with a doubled slash', async () => {
    const s = '5e000003';
    const { port, requested, options } = await serve({ model: 'pi5', serials: [s] });
    const result = await simulatePi({ host, port, serial: s, model: 'pi5' });
    assert.ok(
      options.every((o) => o.tsize === '0' && o.blksize === '1468'),
      'the Pi 5 asks for 1468-byte blocks throughout',
    );
    assert.deepEqual(steps(result), [
      `probe ${s}/config.txt`,
      `read ${s}/pieeprom.sig ${notFound}`,
      `read ${s}//config.txt`,
      `size ${s}/bcm2712-rpi-5-b.dtb`,
      `read ${s}/bcm2712-rpi-5-b.dtb`,
      `size ${s}/overlays/overlay_map.dtb`,
      `read ${s}/overlays/overlay_map.dtb`,
      `size ${s}/overlays/vc4-kms-v3d-pi5.dtbo`,
      `read ${s}/overlays/vc4-kms-v3d-pi5.dtbo`,
      `size ${s}/cmdline.txt`,
      `read ${s}/cmdline.txt`,
      `size ${s}/armstub8-2712.bin ${notFound}`,
      `size ${s}/kernel_2712.img`,
      `read ${s}/kernel_2712.img`,
      `size ${s}/initramfs_2712`,
      `read ${s}/initramfs_2712`,
    ]);
    assert.ok(requested.includes(`${s}//config.txt`), 'the doubled slash went out on the wire');
    assert.equal(result.success, true);
    assert.equal(result.files[0].bytes, 0, 'the probe ends at the OACK');
  });

  test('config.txt decides the kernel, initramfs, device tree and overlays', async () => {
    const s = '5e000004';
    const { root, port } = await serve({
      model: 'pi4',
      serials: [s],
      overlays: ['dwc2', 'disable-bt'],
      configLines: ['kernel=vmlinuz', 'initramfs initrd.img followkernel', 'device_tree=my.dtb', '[pi5]', 'kernel=not-me.img'],
    });
    for (const name of ['vmlinuz', 'initrd.img', 'my.dtb']) writeFileSync(join(root, '.sample-pi4', name), `${name}\n`);
    const result = await simulatePi({ host, port, serial: s, model: 'pi4' });
    const loaded = result.files.filter((file) => file.purpose === 'read' && file.stage === 'firmware').map((file) => file.name);
    assert.deepEqual(loaded, [
      `${s}/config.txt`,
      `${s}/config.txt`,
      `${s}/my.dtb`,
      `${s}/overlays/overlay_map.dtb`,
      `${s}/config.txt`,
      `${s}/overlays/dwc2.dtbo`,
      `${s}/overlays/disable-bt.dtbo`,
      `${s}/cmdline.txt`,
      `${s}/vmlinuz`,
      `${s}/initrd.img`,
    ]);
    assert.equal(result.success, true);
  });

  test('a missing required file fails the boot and names the file; nothing is asked for after it', async () => {
    const s = '5e000005';
    const { port } = await serve({ model: 'pi4', serials: [s], omit: ['kernel8.img'] });
    const result = await simulatePi({ host, port, serial: s, model: 'pi4' });
    assert.equal(result.success, false);
    assert.deepEqual(result.failures, [{ file: `${s}/kernel8.img`, error: 'ERROR 1 File not found' }]);
    assert.equal(result.files.at(-1)?.name, `${s}/kernel8.img`);
  });

  test('missing optional files (an overlay, cmdline.txt, auto initramfs) do not fail the boot', async () => {
    const s = '5e000006';
    const { port } = await serve({ model: 'pi5', serials: [s], omit: ['overlays/vc4-kms-v3d-pi5.dtbo', 'cmdline.txt', 'initramfs_2712'] });
    const result = await simulatePi({ host, port, serial: s, model: 'pi5' });
    assert.deepEqual({ success: result.success, failures: result.failures }, { success: true, failures: [] });
    assert.deepEqual(
      result.files.filter((file) => file.error).map((file) => file.name),
      [`${s}/pieeprom.sig`, `${s}/overlays/vc4-kms-v3d-pi5.dtbo`, `${s}/cmdline.txt`, `${s}/armstub8-2712.bin`, `${s}/initramfs_2712`],
    );
  });

  test('a Pi 5 without kernel_2712.img falls back to kernel8.img', async () => {
    const s = '5e000007';
    const { root, port } = await serve({ model: 'pi5', serials: [s], omit: ['kernel_2712.img'] });
    writeFileSync(join(root, '.sample-pi5', 'kernel8.img'), 'arm64 kernel\n');
    const result = await simulatePi({ host, port, serial: s, model: 'pi5' });
    assert.equal(result.success, true);
    assert.deepEqual(
      result.files.filter((file) => file.name.includes('kernel')).map((file) => `${file.purpose} ${file.name} ${file.error ?? 'ok'}`),
      [`size ${s}/kernel_2712.img ERROR 1 File not found`, `size ${s}/kernel8.img ok`, `read ${s}/kernel8.img ok`],
    );
  });

  test('an unknown serial: the prefix is dropped after start4.elf and start.elf are not found, and the first packet was an error', async () => {
    const { root, port } = await serve({ model: 'pi4', serials: [] });
    for (const name of ['start4.elf', 'fixup4.dat', 'kernel8.img', 'bcm2711-rpi-4-b.dtb']) writeFileSync(join(root, name), `${name}\n`);
    const result = await simulatePi({ host, port, serial: 'abcdef01', model: 'pi4' });
    assert.deepEqual(steps(result).slice(0, 4), [
      `probe abcdef01/start4.elf ${notFound}`,
      `probe abcdef01/start.elf ${notFound}`,
      'probe start4.elf',
      'read config.txt (ERROR 1 File not found)',
    ]);
    assert.deepEqual(
      { success: result.success, prefix: result.prefix, firstPacketAnswered: result.firstPacketAnswered },
      { success: true, prefix: '', firstPacketAnswered: false },
    );
  });

  test('a server that never answers fails the first file at the per-file timeout', async () => {
    const result = await simulatePi({ host, port: 9, serial: '5e000008', model: 'pi5', fileTimeoutMs: 300, retransmitMs: 100 });
    assert.deepEqual(
      {
        success: result.success,
        firstPacketAnswered: result.firstPacketAnswered,
        failures: result.failures,
        requests: result.files.length,
      },
      {
        success: false,
        firstPacketAnswered: false,
        failures: [{ file: '5e000008/config.txt', error: 'no whole file within 300 ms' }],
        requests: 1,
      },
    );
  });
});

describe('Pi serials', () => {
  test('a Pi 4 serial is 10000000 and the prefix; a Pi 5 has its own upper half, the prefix is the lower 8 digits', () => {
    assert.equal(boardSerial('pi4', '1a2b3c4d'), '100000001a2b3c4d');
    const pi5 = boardSerial('pi5', '1a2b3c4d');
    assert.match(pi5, /^[0-9a-f]{8}1a2b3c4d$/);
    assert.notEqual(pi5.slice(0, 8), '10000000');
  });

  test('serials count up from the start, as 8 lower-case hex digits', () => {
    assert.deepEqual(
      piSerials('pi4' as PiModel, 0xfffffffe, 2).map((s) => s.serial),
      ['fffffffe', 'ffffffff'],
    );
  });

  test('a start serial is 8 hex digits or a whole 16-digit serial', () => {
    assert.equal(parseSerialStart('1A2B3C4D'), 0x1a2b3c4d);
    assert.equal(parseSerialStart('0c8f7e5cbd989ae1'), 0xbd989ae1);
    assert.match(String(parseSerialStart('xyz')), /not a Pi serial: expected 8 hex digits/);
    assert.match(String(parseSerialStart('1a2b3c4')), /not a Pi serial/);
  });
});
