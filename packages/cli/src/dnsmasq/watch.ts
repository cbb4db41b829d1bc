import { performance } from 'node:perf_hooks';
import { MusterError } from '@muster/contract/errors.ts';
import { LogFollower } from './follow.ts';
import { parseTftpLogLine } from './log-line.ts';
import type { Materialised, PiDirectoryMaterialiser } from './materialise.ts';
import { serialFromTftpPath } from './pi-serial.ts';
import type { PiTreeCatalog } from './tree-source.ts';

export type WatchEvent =
  | ({ event: 'materialised'; ms: number } & Materialised)
  | { event: 'refused'; serial: string; code: string; message: string; retry_in_ms: number }
  | { event: 'error'; serial: string; code: string; message: string; retry_in_ms: number | null };

export interface RetryPolicy {
  firstMs: number;
  maxMs: number;
  /** After failing this long, stop; the serial's next log line starts again. */
  giveUpMs: number;
  /** A refused (or otherwise final) answer is not asked again for this long. */
  cooldownMs: number;
}

export const defaultRetry: RetryPolicy = { firstMs: 1000, maxMs: 30_000, giveUpMs: 10 * 60_000, cooldownMs: 60_000 };

export interface PiDirectoryWatchOptions {
  materialiser: PiDirectoryMaterialiser;
  /** The TFTP root as it appears in dnsmasq's log lines (more than one spelling may). */
  logRoots: readonly string[];
  serialPattern: RegExp;
  onEvent: (event: WatchEvent) => void;
  retry?: RetryPolicy;
  /** Serials materialised at once; more wait their turn. */
  parallel?: number;
}

type SerialState =
  | { state: 'working' }
  | { state: 'done' }
  | { state: 'waiting'; timer: NodeJS.Timeout }
  | { state: 'cooling'; until: number };

/** Codes worth asking again soon: the server is away or busy, or something broke on the way. */
const retryable = new Set(['unavailable', 'rate_limited', 'internal']);
/** Beyond this many remembered serials, the ones that need no memory (done, cooled down) are forgotten. */
const maxRemembered = 10_000;

/**
 * Turns dnsmasq TFTP log lines into serial directories: the first line naming an unseen serial starts its
 * materialisation; lines for a serial being materialised, or refused a moment ago, change nothing. Failures to
 * reach muster are retried with backoff; the watch never stops for one serial's failure.
 */
export class PiDirectoryWatch {
  readonly #options: PiDirectoryWatchOptions;
  readonly #retry: RetryPolicy;
  readonly #states = new Map<string, SerialState>();
  readonly #running = new Set<Promise<void>>();
  readonly #queue: (() => void)[] = [];
  #active = 0;
  #closed = false;

  constructor(options: PiDirectoryWatchOptions) {
    this.#options = options;
    this.#retry = options.retry ?? defaultRetry;
  }

  /** One log line; `receivedAt` (performance.now()) is when it was read, for the latency reported. */
  handleLine(line: string, receivedAt: number = performance.now()): void {
    const event = parseTftpLogLine(line);
    if (!event?.path) return;
    const serial = serialFromTftpPath(event.path, this.#options.logRoots, this.#options.serialPattern);
    if (!serial) return;
    const known = this.#states.get(serial);
    if (known?.state === 'working' || known?.state === 'waiting') return;
    if (known?.state === 'cooling' && performance.now() < known.until) return;
    // A serial already done is looked at again only when dnsmasq missed a file: its directory may be gone.
    if (known?.state === 'done' && event.kind !== 'not_found') return;
    this.#start(serial, receivedAt, performance.now(), 1);
  }

  /** Resolves when nothing is being materialised (retries that wait on a timer do not count). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  close(): void {
    this.#closed = true;
    for (const state of this.#states.values()) if (state.state === 'waiting') clearTimeout(state.timer);
  }

  #start(serial: string, receivedAt: number, firstTry: number, attempt: number): void {
    if (this.#closed) return;
    this.#forgetSome();
    this.#states.set(serial, { state: 'working' });
    const run = this.#materialise(serial, receivedAt, firstTry, attempt).finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  async #materialise(serial: string, receivedAt: number, firstTry: number, attempt: number): Promise<void> {
    await this.#turn();
    try {
      const result = await this.#options.materialiser.materialise(serial);
      this.#states.set(serial, { state: 'done' });
      if (result) this.#options.onEvent({ event: 'materialised', ms: Math.round(performance.now() - receivedAt), ...result });
    } catch (error) {
      this.#failed(serial, error, receivedAt, firstTry, attempt);
    } finally {
      this.#active--;
      this.#queue.shift()?.();
    }
  }

  #turn(): Promise<void> {
    const parallel = this.#options.parallel ?? 8;
    if (this.#active < parallel) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.#queue.push(() => {
        this.#active++;
        resolve();
      }),
    );
  }

  #failed(serial: string, error: unknown, receivedAt: number, firstTry: number, attempt: number): void {
    const code = error instanceof MusterError ? error.code : ((error as NodeJS.ErrnoException).code ?? 'internal');
    const message = error instanceof Error ? error.message : String(error);
    const canRetry = !(error instanceof MusterError) || retryable.has(error.code);
    const now = performance.now();
    if (!canRetry) {
      const cooldown = this.#retry.cooldownMs;
      this.#states.set(serial, { state: 'cooling', until: now + cooldown });
      const event = code === 'boot_refused' ? 'refused' : 'error';
      this.#options.onEvent({ event, serial, code, message, retry_in_ms: cooldown });
      return;
    }
    const delay = Math.min(this.#retry.firstMs * 2 ** (attempt - 1), this.#retry.maxMs);
    if (now + delay - firstTry > this.#retry.giveUpMs || this.#closed) {
      this.#states.set(serial, { state: 'cooling', until: now });
      this.#options.onEvent({ event: 'error', serial, code, message, retry_in_ms: null });
      return;
    }
    const timer = setTimeout(() => this.#start(serial, receivedAt, firstTry, attempt + 1), delay);
    this.#states.set(serial, { state: 'waiting', timer });
    this.#options.onEvent({ event: 'error', serial, code, message, retry_in_ms: delay });
  }

  #forgetSome(): void {
    if (this.#states.size < maxRemembered) return;
    const now = performance.now();
    for (const [serial, state] of this.#states) {
      if (state.state === 'done' || (state.state === 'cooling' && state.until <= now)) this.#states.delete(serial);
    }
  }
}

export interface DnsmasqWatchOptions extends PiDirectoryWatchOptions {
  log: string;
  fromStart?: boolean;
  onReadError?: (error: Error) => void;
  /** When given, the cache is filled with every tree's shared files at start, while the log is already followed. */
  catalog?: PiTreeCatalog;
  onWarm?: (outcome: { trees: number; files: number; bytes: number } | Error) => void;
}

/** Follows dnsmasq's log and materialises serial directories until closed. */
export async function startDnsmasqWatch(options: DnsmasqWatchOptions): Promise<{ watch: PiDirectoryWatch; close(): Promise<void> }> {
  await options.materialiser.prepare();
  const watch = new PiDirectoryWatch(options);
  const follower = await LogFollower.start(options.log, {
    fromStart: options.fromStart,
    onLine: (line) => watch.handleLine(line),
    onError: options.onReadError,
  });
  const warming = options.catalog
    ? options.materialiser.warm(options.catalog).then(
        (outcome) => options.onWarm?.(outcome),
        (error: Error) => options.onWarm?.(error),
      )
    : Promise.resolve();
  return {
    watch,
    async close() {
      await follower.close();
      watch.close();
      await Promise.all([watch.idle(), warming]);
    },
  };
}
