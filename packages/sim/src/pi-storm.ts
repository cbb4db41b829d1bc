import { loopbackSource, maxStormCount, runArrivals, timeSummary } from './arrivals.ts';
import type { PiModel } from './config-txt.ts';
import { type PiBootResult, type SimulatePiOptions, simulatePi } from './pi-boot.ts';
import { maxSerial, piSerials } from './pi-serial.ts';

export interface PiStormOptions {
  host: string;
  port: number;
  count: number;
  model: PiModel;
  /** Arrivals spread over this many seconds; 0 powers every Pi on at once. */
  arrivalSeconds?: number;
  /** The first serial's TFTP prefix as a number; the others count up from it. */
  serialStart?: number;
  /** At most this many Pis booting at once (default: all of them). */
  concurrency?: number;
  /** The whole storm ends by then (default: arrival time plus 5 minutes). */
  deadlineSeconds?: number;
  fileTimeoutMs?: number;
  retransmitMs?: number;
  /**
   * A Pi whose boot failed starts it again after this long, until it boots or the storm ends, as a Pi 4 does with
   * BOOT_ORDER ending in 0xf (restart): a file that did not arrive within its limit, or an ERROR, ends the boot
   * attempt; the bootloader tries its next boot mode, restarts, brings the link up and asks DHCP again. null (the
   * default): one attempt.
   */
  restartDelayMs?: number | null;
  /** Send each Pi's packets from its own 127.x.y.z address, derived from its serial (default: when the server is on 127.0.0.0/8). */
  distinctSources?: boolean;
  hashFiles?: boolean;
  /** Put every Pi's result in the summary (`pis`). */
  keepResults?: boolean;
}

export interface PiStormSummary {
  model: PiModel;
  count: number;
  succeeded: number;
  failed: number;
  /** Pis whose first request was answered with DATA or OACK. */
  firstPacketAnswered: number;
  /** Boot attempts over all Pis (more than `count` when Pis restarted). */
  attempts: number;
  bootMs: { median: number; p95: number; max: number };
  bytes: number;
  requests: number;
  elapsedMs: number;
  failures: { serial: string; file: string; error: string }[];
  pis?: PiBootResult[];
}

export const defaultSerialStart = 0x5e000001;

function failedBoot(serial: string, model: PiModel, error: string): PiBootResult {
  return {
    serial,
    model,
    prefix: `${serial}/`,
    success: false,
    bootMs: 0,
    attempts: 0,
    firstPacketAnswered: false,
    bytes: 0,
    files: [],
    failures: [{ file: '-', error }],
  };
}

/** Boots one Pi, again after `restartDelayMs` each time it fails (null: once), until it boots or `signal` aborts. */
async function bootUntilUp(restartDelayMs: number | null, signal: AbortSignal, options: SimulatePiOptions): Promise<PiBootResult> {
  const began = performance.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const result = await simulatePi(options);
    if (result.success || restartDelayMs === null || signal.aborted) return { ...result, attempts, bootMs: performance.now() - began };
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, restartDelayMs);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
    if (signal.aborted) return { ...result, attempts, bootMs: performance.now() - began };
  }
}

/** Boots `count` simulated Pis against one TFTP server and sums up how it went. */
export async function runPiStorm(options: PiStormOptions): Promise<PiStormSummary> {
  const { count, model } = options;
  const start = options.serialStart ?? defaultSerialStart;
  if (!Number.isInteger(count) || count < 1 || count > maxStormCount) throw new RangeError(`count must be 1 to ${maxStormCount}`);
  if (!Number.isInteger(start) || start < 0 || start + count - 1 > maxSerial) throw new RangeError('serials must stay within 8 hex digits');
  const arrivalMs = (options.arrivalSeconds ?? 0) * 1000;
  const deadlineMs = (options.deadlineSeconds ?? arrivalMs / 1000 + 300) * 1000;
  const distinct = options.distinctSources ?? options.host.startsWith('127.');
  const serials = piSerials(model, start, count);
  const began = performance.now();
  const results = await runArrivals(
    { count, arrivalMs, concurrency: options.concurrency ?? count, deadlineMs },
    (index, signal) =>
      bootUntilUp(options.restartDelayMs ?? null, signal, {
        host: options.host,
        port: options.port,
        serial: serials[index].serial,
        model,
        // One address per serial: a Pi keeps its address from one storm to the next.
        localAddress: distinct ? loopbackSource(start + index) : undefined,
        fileTimeoutMs: options.fileTimeoutMs,
        retransmitMs: options.retransmitMs,
        hashFiles: options.hashFiles,
        signal,
      }),
    {
      notStarted: (index) => failedBoot(serials[index].serial, model, 'not started before the storm deadline'),
      crashed: (index, error) => failedBoot(serials[index].serial, model, error instanceof Error ? error.message : String(error)),
    },
  );
  const succeeded = results.filter((pi) => pi.success);
  const summary: PiStormSummary = {
    model,
    count,
    succeeded: succeeded.length,
    failed: count - succeeded.length,
    firstPacketAnswered: results.filter((pi) => pi.firstPacketAnswered).length,
    attempts: results.reduce((sum, pi) => sum + pi.attempts, 0),
    bootMs: timeSummary(succeeded.map((pi) => pi.bootMs)),
    bytes: results.reduce((sum, pi) => sum + pi.bytes, 0),
    requests: results.reduce((sum, pi) => sum + pi.files.length, 0),
    elapsedMs: Math.round(performance.now() - began),
    failures: results.flatMap((pi) => pi.failures.map((failure) => ({ serial: pi.serial, ...failure }))),
  };
  if (options.keepResults) summary.pis = results;
  return summary;
}
