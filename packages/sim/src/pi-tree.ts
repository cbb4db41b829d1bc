import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PiModel } from './config-txt.ts';

/** A boot directory in the shape a Pi expects, for simulations and tests: made-up bytes, real names. */
export interface SampleTreeOptions {
  model: PiModel;
  /** Each gets a `<serial>/` directory (a symlink to one shared copy). */
  serials: string[];
  kernelBytes?: number;
  initramfsBytes?: number;
  /** Overlays named by `dtoverlay=` lines in config.txt (default vc4-kms-v3d[-pi5]). */
  overlays?: string[];
  /** Extra config.txt lines, appended under [all]. */
  configLines?: string[];
  /** Leave these files out (names relative to the serial directory), e.g. to make a boot fail. */
  omit?: string[];
  /** The shared directory the serial symlinks point to (default `.sample-<model>`). */
  directory?: string;
}

export interface SampleTree {
  /** Name relative to a serial directory → content. */
  files: Record<string, Buffer>;
  sha256: Record<string, string>;
}

function filler(length: number, seed: string): Buffer {
  const block = createHash('sha256').update(seed).digest();
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  // Vary the bytes along the file so a misplaced block changes the hash.
  for (let i = 0; i < length; i += 4096) out[i] = (i / 4096) & 0xff;
  return out;
}

export function sampleFiles(options: Omit<SampleTreeOptions, 'serials'>): Record<string, Buffer> {
  const pi5 = options.model === 'pi5';
  const overlays = options.overlays ?? [pi5 ? 'vc4-kms-v3d-pi5' : 'vc4-kms-v3d'];
  const config = [
    '# config.txt for a simulated boot',
    '[all]',
    'auto_initramfs=1',
    ...overlays.map((name) => `dtoverlay=${name}`),
    ...(options.configLines ?? []),
    '',
  ].join('\n');
  const files: Record<string, Buffer> = {
    'config.txt': Buffer.from(config),
    'cmdline.txt': Buffer.from('console=serial0,115200 console=tty1 root=/dev/nfs ip=dhcp rootwait\n'),
    [pi5 ? 'bcm2712-rpi-5-b.dtb' : 'bcm2711-rpi-4-b.dtb']: filler(pi5 ? 79_000 : 54_000, 'dtb'),
    'overlays/overlay_map.dtb': filler(5_000, 'overlay_map'),
    [pi5 ? 'kernel_2712.img' : 'kernel8.img']: filler(options.kernelBytes ?? 1_500_000, 'kernel'),
    [pi5 ? 'initramfs_2712' : 'initramfs8']: filler(options.initramfsBytes ?? 700_000, 'initramfs'),
  };
  for (const name of overlays) files[`overlays/${name}.dtbo`] = filler(3_000, name);
  if (!pi5) {
    files['start4.elf'] = filler(2_250_000, 'start4.elf');
    files['fixup4.dat'] = filler(5_400, 'fixup4.dat');
  }
  for (const name of options.omit ?? []) delete files[name];
  return files;
}

/** Writes `root/.sample-<model>/…` once and a `root/<serial>` symlink to it for every serial. */
export function writeSampleTree(root: string, options: SampleTreeOptions): SampleTree {
  const files = sampleFiles(options);
  const shared = options.directory ?? `.sample-${options.model}`;
  for (const [name, content] of Object.entries(files)) {
    const path = join(root, shared, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
  for (const serial of options.serials) symlinkSync(shared, join(root, serial));
  const sha256 = Object.fromEntries(
    Object.entries(files).map(([name, content]) => [name, createHash('sha256').update(content).digest('hex')]),
  );
  return { files, sha256 };
}
