import { type BootConfig, bootFiles, emptyBootConfig, type PiModel, parseConfigTxt } from './config-txt.ts';
import { type TftpGetOptions, type TftpGetResult, tftpGet } from './tftp-client.ts';
import { ErrorCode } from './tftp-packet.ts';

export interface SimulatePiOptions {
  host: string;
  port: number;
  /** The TFTP prefix the bootloader presents: 8 lower-case hex digits. */
  serial: string;
  model: PiModel;
  /** Source address for this Pi's packets (each real Pi has its own). */
  localAddress?: string;
  /** Per-file timeout, the bootloader's TFTP_FILE_TIMEOUT (default 30 s). */
  fileTimeoutMs?: number;
  /** Silence after which a request or ACK is sent again (default 1 s). */
  retransmitMs?: number;
  /** Record the sha256 of every file read whole. */
  hashFiles?: boolean;
  signal?: AbortSignal;
}

/** One TFTP request of the boot: an existence probe, a size probe (ended after the OACK), or a whole read. */
export interface PiFileResult {
  /** The name as sent on the wire, prefix included. */
  name: string;
  purpose: 'probe' | 'size' | 'read';
  stage: 'bootloader' | 'firmware';
  /** A required file must arrive whole; an optional one may be missing (ERROR 1). */
  required: boolean;
  bytes: number;
  ms: number;
  error: string | null;
  sha256?: string;
}

export interface PiBootResult {
  serial: string;
  model: PiModel;
  /** The directory prefix the boot went on with: `<serial>/`, or '' when the bootloader had to drop it. */
  prefix: string;
  success: boolean;
  /** From the first request to the end of the last (of the first attempt to the last, when it restarted). */
  bootMs: number;
  /** Boot attempts: 1, or more when a failed boot restarted (see pi-storm.ts `restartDelayMs`). */
  attempts: number;
  /** The first request was answered with DATA or OACK, not an ERROR or silence. */
  firstPacketAnswered: boolean;
  /** Bytes received over all requests. */
  bytes: number;
  files: PiFileResult[];
  failures: { file: string; error: string }[];
}

// The bootloader asks for 1468-byte blocks (one Ethernet frame); the Pi 4's start4.elf asks for 1024.
const bootloaderBlksize = 1468;
const firmwareBlksize: Record<PiModel, number> = { pi4: 1024, pi5: 1468 };

function describeError(result: TftpGetResult): string {
  const error = result.error;
  if (!error) return 'unknown error';
  return error.from === 'server' ? `ERROR ${error.code} ${error.message}` : error.message;
}

const isNotFound = (result: TftpGetResult) => result.error?.from === 'server' && result.error.code === ErrorCode.fileNotFound;

interface Step {
  stage: 'bootloader' | 'firmware';
  required: boolean;
  keep?: boolean;
}

/** One simulated board: its requests in the order the real bootloader and firmware make them. */
class PiBoot {
  readonly #o: SimulatePiOptions;
  readonly #files: PiFileResult[] = [];
  readonly #failures: { file: string; error: string }[] = [];
  #prefix: string;
  #firstAnswered: boolean | null = null;
  #stopped = false;
  /**
   * With an address of its own, a Pi counts its source port up by one per request, as real bootloaders do, so a
   * new request never comes from the port of one the server may still be closing. Sharing an address, the
   * system picks.
   */
  #nextPort: number | undefined;

  constructor(options: SimulatePiOptions) {
    this.#o = options;
    this.#prefix = `${options.serial}/`;
    if (options.localAddress) this.#nextPort = 40_000 + (Number.parseInt(options.serial, 16) % 20_000);
  }

  async run(): Promise<PiBootResult> {
    const started = performance.now();
    if (this.#o.model === 'pi4') await this.#bootPi4();
    else await this.#bootPi5();
    const bytes = this.#files.reduce((sum, file) => sum + file.bytes, 0);
    return {
      serial: this.#o.serial,
      model: this.#o.model,
      prefix: this.#prefix,
      success: this.#failures.length === 0,
      bootMs: performance.now() - started,
      attempts: 1,
      firstPacketAnswered: this.#firstAnswered === true,
      bytes,
      files: this.#files,
      failures: this.#failures,
    };
  }

  /** Pi 4: bootloader in EEPROM (1468-byte blocks) loads start4.elf, whose own TFTP client (1024) loads the OS. */
  async #bootPi4(): Promise<void> {
    const boot: Step = { stage: 'bootloader', required: false };
    if (!(await this.#findPi4Prefix())) return;
    await this.#read('config.txt', boot);
    for (const name of ['pieeprom.sig', 'recover4.elf', 'recovery.elf']) await this.#read(name, boot);
    await this.#read('start4.elf', { ...boot, required: true });
    await this.#read('fixup4.dat', { ...boot, required: true });
    if (this.#stopped) return;
    const firmware: Step = { stage: 'firmware', required: false };
    await this.#load('recovery.elf', firmware);
    let config = await this.#readConfig(firmware);
    await this.#load('dt-blob.bin', firmware);
    await this.#load('recovery.elf', firmware);
    config = await this.#readConfig(firmware);
    await this.#load('bootcfg.txt', firmware);
    await this.#loadOs(config, firmware, async () => {
      await this.#readConfig(firmware);
    });
  }

  /** `<serial>/start4.elf`, then `<serial>/start.elf`; when neither exists the bootloader drops the prefix. */
  async #findPi4Prefix(): Promise<boolean> {
    const probe = { stage: 'bootloader', required: false } as const;
    const first = await this.#get('start4.elf', 'probe', probe, { abort: 'first-block' });
    if (first.ok) return true;
    if (!isNotFound(first)) return this.#fail(first);
    const legacy = await this.#get('start.elf', 'probe', probe, { abort: 'first-block' });
    if (legacy.ok) return this.#fail(first);
    this.#prefix = '';
    const root = await this.#get('start4.elf', 'probe', { ...probe, required: true }, { abort: 'first-block' });
    return root.ok || this.#fail(root);
  }

  /** Pi 5: the bootloader carries its firmware (no start4.elf) and loads the OS itself, 1468-byte blocks throughout. */
  async #bootPi5(): Promise<void> {
    const boot: Step = { stage: 'bootloader', required: false };
    const probe = await this.#get('config.txt', 'probe', boot, { abort: 'oack' });
    if (!probe.ok && !isNotFound(probe)) return void this.#fail(probe);
    // Without config.txt the prefixed directory is not bootable: the bootloader goes on from the root.
    if (!probe.ok) this.#prefix = '';
    await this.#read('pieeprom.sig', boot);
    // The Pi 5 asks for this one with a doubled slash.
    const config = await this.#readConfig(boot, { doubledSlash: true, sizeProbe: false });
    await this.#loadOs(config, boot, async () => {});
  }

  /** Device tree, overlays, command line, kernel and initramfs, as config.txt names them. */
  async #loadOs(config: BootConfig, step: Step, beforeOverlays: () => Promise<void>): Promise<void> {
    const files = bootFiles(config, this.#o.model);
    if (files.deviceTree) await this.#load(files.deviceTree, { ...step, required: true });
    await this.#load(files.overlayMap, step);
    await beforeOverlays();
    for (const overlay of files.overlays) await this.#load(overlay, step);
    await this.#load(files.cmdline, step);
    if (this.#o.model === 'pi4') await this.#load('recovery8.img', step);
    else await this.#load('armstub8-2712.bin', step);
    const kernel = await this.#load(files.kernel, { ...step, required: files.kernelFallback === null });
    if (!kernel && files.kernelFallback) await this.#load(files.kernelFallback, { ...step, required: true });
    if (this.#o.model === 'pi4') await this.#load(config.arm64 ? 'armstub8-gic.bin' : 'armstub8-32-gic.bin', step);
    for (const initramfs of files.initramfs) await this.#load(initramfs.name, { ...step, required: !initramfs.optional });
  }

  /** Reads config.txt and the files it includes; a missing config.txt leaves the defaults. */
  async #readConfig(step: Step, how = { doubledSlash: false, sizeProbe: step.stage === 'firmware' }): Promise<BootConfig> {
    const config = emptyBootConfig();
    const name = how.doubledSlash && this.#prefix !== '' ? `${this.#prefix}/config.txt` : null;
    const text = how.sizeProbe
      ? await this.#load('config.txt', { ...step, keep: true })
      : await this.#read('config.txt', { ...step, keep: true }, name);
    if (!text) return config;
    parseConfigTxt(text.toString('latin1'), this.#o.model, this.#o.serial, config);
    for (const include of config.includes.splice(0)) {
      const included = await this.#load(include, { ...step, keep: true });
      if (included) parseConfigTxt(included.toString('latin1'), this.#o.model, this.#o.serial, config);
    }
    return config;
  }

  /** The firmware's way: a size probe (ended after the OACK), then the whole file. Null when it did not arrive. */
  async #load(name: string, step: Step): Promise<Buffer | null> {
    if (this.#stopped) return null;
    const size = await this.#get(name, 'size', step, { abort: 'oack' });
    if (!size.ok) return this.#missing(size, step);
    return this.#read(name, step);
  }

  /** One whole read; null when the file did not arrive. `wireName` overrides the prefixed name. */
  async #read(name: string, step: Step, wireName: string | null = null): Promise<Buffer | null> {
    if (this.#stopped) return null;
    const result = await this.#get(name, 'read', step, { keep: step.keep }, wireName);
    if (!result.ok) return this.#missing(result, step);
    return result.data ?? Buffer.alloc(0);
  }

  /** An optional file may be missing; anything else, or a missing required file, fails the boot. */
  #missing(result: TftpGetResult, step: Step): null {
    if (step.required || !isNotFound(result)) this.#fail(result);
    return null;
  }

  #fail(result: TftpGetResult): false {
    this.#failures.push({ file: result.filename, error: describeError(result) });
    // A real Pi gives up this boot attempt at the first failure.
    this.#stopped = true;
    return false;
  }

  async #get(
    name: string,
    purpose: PiFileResult['purpose'],
    step: Step,
    extra: Pick<TftpGetOptions, 'abort' | 'keep'>,
    wireName: string | null = null,
  ): Promise<TftpGetResult> {
    const filename = wireName ?? this.#prefix + name;
    const result = await tftpGet({
      host: this.#o.host,
      port: this.#o.port,
      filename,
      localAddress: this.#o.localAddress,
      localPort: this.#nextPort,
      tsize: true,
      blksize: step.stage === 'bootloader' ? bootloaderBlksize : firmwareBlksize[this.#o.model],
      retransmitMs: this.#o.retransmitMs,
      fileTimeoutMs: this.#o.fileTimeoutMs,
      hash: this.#o.hashFiles && purpose === 'read',
      signal: this.#o.signal,
      ...extra,
    });
    if (this.#nextPort !== undefined && result.localPort !== 0) this.#nextPort = result.localPort + 1;
    this.#firstAnswered ??= result.firstReply === 'data' || result.firstReply === 'oack';
    const file: PiFileResult = {
      name: filename,
      purpose,
      stage: step.stage,
      required: step.required,
      bytes: result.bytes,
      ms: Math.round(result.ms * 10) / 10,
      error: result.ok ? null : describeError(result),
    };
    if (result.sha256) file.sha256 = result.sha256;
    this.#files.push(file);
    return result;
  }
}

/** Boots one simulated Raspberry Pi 4 or 5 over TFTP; resolves with what happened, never rejects for network trouble. */
export async function simulatePi(options: SimulatePiOptions): Promise<PiBootResult> {
  if (!/^[0-9a-f]{8}$/.test(options.serial)) throw new RangeError(`serial must be 8 lower-case hex digits, not "${options.serial}"`);
  return new PiBoot(options).run();
}
