export type PiModel = 'pi4' | 'pi5';

/** What a Pi's firmware takes from config.txt to decide which files to load next. */
export interface BootConfig {
  /** `kernel=`, null for the model's default. */
  kernel: string | null;
  /** `initramfs NAME[,NAME] [followkernel]` or `ramfsfile=`, in order. */
  initramfs: string[];
  autoInitramfs: boolean;
  /** `device_tree=`; null for the model's default, '' for none. */
  deviceTree: string | null;
  /** `dtoverlay=NAME[,params]` names, in order. */
  overlays: string[];
  /** `include FILE` names, in order (read by the firmware stage, not by the bootloader). */
  includes: string[];
  /** `os_prefix=`: put before the kernel, initramfs, cmdline, device tree and overlays. */
  osPrefix: string;
  /** `cmdline=`, default cmdline.txt. */
  cmdline: string;
  /** `arm_64bit=0` chooses the 32-bit kernel on a Pi 4. */
  arm64: boolean;
}

export function emptyBootConfig(): BootConfig {
  return {
    kernel: null,
    initramfs: [],
    autoInitramfs: false,
    deviceTree: null,
    overlays: [],
    includes: [],
    osPrefix: '',
    cmdline: 'cmdline.txt',
    arm64: true,
  };
}

// Model filters (config.txt "conditional filters") naming the boards simulated here; other models' sections are skipped.
const modelFilters: Record<PiModel, ReadonlySet<string>> = {
  pi4: new Set(['pi4']),
  pi5: new Set(['pi5']),
};
const otherModels = new Set(['pi0', 'pi0w', 'pi02', 'pi1', 'pi2', 'pi3', 'pi3+', 'pi400', 'cm4', 'cm4s', 'cm5', 'pi500', 'pi500+', 'cm0']);

/** Whether the lines under `[filter]` apply, for the kinds of filter that decide what is loaded. */
function filterApplies(filter: string, model: PiModel, serial: string): boolean | null {
  const name = filter.toLowerCase();
  if (name === 'all') return null;
  if (name === 'none' || name === 'tryboot') return false;
  if (modelFilters[model].has(name)) return true;
  if (otherModels.has(name) || modelFilters.pi4.has(name) || modelFilters.pi5.has(name)) return false;
  const serialFilter = /^0x([0-9a-f]{1,16})$/.exec(name);
  if (serialFilter) return serialFilter[1].padStart(8, '0').slice(-8) === serial;
  // EDID, HDMI, GPIO and other filters depend on hardware a simulated board lacks: treated as true.
  return true;
}

function filterKind(filter: string): string {
  const name = filter.toLowerCase();
  if (/^0x[0-9a-f]+$/.test(name)) return 'serial';
  if (modelFilters.pi4.has(name) || modelFilters.pi5.has(name) || otherModels.has(name)) return 'model';
  return name.split(/[=:]/)[0];
}

/**
 * Reads the settings that choose files from config.txt text, applying the conditional filters for one board.
 * Filters of one kind replace each other, different kinds combine, and `[all]` clears them all.
 */
export function parseConfigTxt(text: string, model: PiModel, serial: string, into: BootConfig = emptyBootConfig()): BootConfig {
  const config = into;
  const filters = new Map<string, boolean>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const section = /^\[([^\]]*)\]/.exec(line);
    if (section) {
      const applies = filterApplies(section[1].trim(), model, serial);
      if (applies === null) filters.clear();
      else filters.set(filterKind(section[1].trim()), applies);
      continue;
    }
    if ([...filters.values()].some((applies) => !applies)) continue;
    applySetting(config, line);
  }
  return config;
}

function applySetting(config: BootConfig, line: string): void {
  const spaced = /^(initramfs|include)\s+(\S+)/.exec(line);
  if (spaced) {
    if (spaced[1] === 'include') config.includes.push(spaced[2]);
    else config.initramfs = spaced[2].split(',').filter((name) => name !== '');
    return;
  }
  const eq = line.indexOf('=');
  if (eq <= 0) return;
  const key = line.slice(0, eq).trim().toLowerCase();
  const value = line.slice(eq + 1).trim();
  switch (key) {
    case 'kernel':
      config.kernel = value || null;
      break;
    case 'ramfsfile':
      config.initramfs = value.split(',').filter((name) => name !== '');
      break;
    case 'auto_initramfs':
      config.autoInitramfs = value === '1';
      break;
    case 'device_tree':
      config.deviceTree = value;
      break;
    case 'dtoverlay': {
      const name = value.split(',')[0].split(':')[0].trim();
      if (name !== '') config.overlays.push(name);
      break;
    }
    case 'os_prefix':
      config.osPrefix = value;
      break;
    case 'cmdline':
      if (value !== '') config.cmdline = value;
      break;
    case 'arm_64bit':
      config.arm64 = value !== '0';
      break;
  }
}

/** The files the firmware loads, once config.txt is read: defaults filled in per model. */
export interface BootFiles {
  kernel: string;
  /** The default kernel name may fall back (Pi 5: kernel_2712.img, then kernel8.img). */
  kernelFallback: string | null;
  initramfs: { name: string; optional: boolean }[];
  deviceTree: string | null;
  overlayMap: string;
  overlays: string[];
  cmdline: string;
}

const defaultDeviceTree: Record<PiModel, string> = { pi4: 'bcm2711-rpi-4-b.dtb', pi5: 'bcm2712-rpi-5-b.dtb' };

// auto_initramfs pairs each default kernel with an initramfs of the same suffix.
const autoInitramfsNames: Record<string, string> = {
  'kernel8.img': 'initramfs8',
  'kernel_2712.img': 'initramfs_2712',
  'kernel7l.img': 'initramfs7l',
};

export function bootFiles(config: BootConfig, model: PiModel): BootFiles {
  const prefix = config.osPrefix;
  const defaultKernel = model === 'pi5' ? 'kernel_2712.img' : config.arm64 ? 'kernel8.img' : 'kernel7l.img';
  const kernel = config.kernel ?? defaultKernel;
  const initramfs = config.initramfs.map((name) => ({ name: prefix + name, optional: false }));
  if (initramfs.length === 0 && config.autoInitramfs && autoInitramfsNames[kernel]) {
    initramfs.push({ name: prefix + autoInitramfsNames[kernel], optional: true });
  }
  const deviceTree = config.deviceTree ?? defaultDeviceTree[model];
  return {
    kernel: prefix + kernel,
    kernelFallback: model === 'pi5' && config.kernel === null ? `${prefix}kernel8.img` : null,
    initramfs,
    deviceTree: deviceTree === '' ? null : prefix + deviceTree,
    overlayMap: `${prefix}overlays/overlay_map.dtb`,
    overlays: config.overlays.map((name) => `${prefix}overlays/${name}.dtbo`),
    cmdline: prefix + config.cmdline,
  };
}
