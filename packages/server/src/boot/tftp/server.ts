import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { availableParallelism } from 'node:os';
import { sourceReader, transferableReader } from './blocks.ts';
import { processTime } from './clock.ts';
import { bufferSource } from './directory.ts';
import { negotiate } from './options.ts';
import { decode, errorPacket, type RequestPacket } from './packet.ts';
import { safePath } from './path.ts';
import { TransferPool } from './pool.ts';
import { runOnListener, runOnOwnPort, socketType, type TransferJob } from './ports.ts';
import { defaultRequestRate, type RequestRate, RequestRateLimit } from './rate.ts';
import type { Transfer, TransferEnd } from './transfer.ts';
import {
  TftpError,
  TftpErrorCode,
  type TftpOutcome,
  type TftpRemote,
  type TftpRequest,
  type TftpResolver,
  type TftpSource,
  type TftpTransferReport,
} from './types.ts';

export interface TftpServerOptions {
  host: string;
  port: number;
  resolve: TftpResolver;
  /** Answer every transfer from the listening port (for firewalls) instead of a new port per transfer. */
  singlePort?: boolean;
  maxTransfers?: number;
  maxPerClient?: number;
  /** New requests per client address (a token bucket); past it, requests are dropped unanswered. null: no limit. */
  requestRate?: RequestRate | null;
  /**
   * Worker threads for transfers whose source is transferable (fileSource, bufferSource); other sources, and every
   * transfer in singlePort mode, run on the main thread. 0: all on the main thread. Default: one per core, at most 4.
   */
  workers?: number;
  timeoutMs?: number;
  retries?: number;
  /**
   * Retries before the client's first ACK (default 2: given up after about 7 s). A client that never answers
   * may not exist: a silent flood must not hold slots for a minute.
   */
  unconfirmedRetries?: number;
  /**
   * After an ACK from a client whose round trip is shorter than this, the thread polls this long instead of
   * sleeping (0, the default: never). It doubles one fast client's speed on an idle machine and costs speed on a
   * busy one: see docs/tftp.md.
   */
  busyPollUs?: number;
  /**
   * How long a client waits for a whole file before it gives up: the Raspberry Pi bootloader's TFTP_FILE_TIMEOUT,
   * 30 s by default. Large transfers are admitted by it when the server is short of throughput (docs/tftp.md,
   * "Storms"), and a transfer past it ends at its client's next silence. null: serve every transfer at once, evenly.
   */
  fileLimitMs?: number | null;
  /** Told of failures that are the server's, not the client's. */
  onError?: (error: unknown) => void;
  /** Told once of every transfer whose request the resolver answered, however it ended. */
  onTransferEnd?: (report: TftpTransferReport) => void;
}

type Settings = Required<Omit<TftpServerOptions, 'onError' | 'onTransferEnd'>> & Pick<TftpServerOptions, 'onError' | 'onTransferEnd'>;

/** Requests from one address at most this far apart belong to one boot (a Pi restarting its boot keeps its place). */
const sessionGapMs = 60_000;
/** Addresses whose boot is remembered at most; past it the oldest are forgotten first. */
const maxSessions = 65_536;

/** A request being resolved or a transfer running, keyed by client address and port: one at a time each. */
interface Entry {
  /** The request datagram that began it: the same bytes again are a retransmission, others a new request. */
  request: Buffer;
  /** The running transfer, on this thread or a worker; null while the request is resolved. */
  running: { end(outcome: TftpOutcome, error: string): void } | null;
  /** The same transfer when it runs on this thread (singlePort hands it the client's packets). */
  transfer: Transfer | null;
  /** The client has acknowledged something, so its address is real; until then the slot may be taken back. */
  heard: boolean;
  /** A different request from the same client port: the client moved on, so it is served once this one ended. */
  next: Later | null;
  /** The same request again while the transfer runs: a retransmission, or the same file asked for once more. */
  repeat: (Later & { at: number }) | null;
}

interface Later {
  message: Buffer;
  remote: RemoteInfo;
}

const maxNetasciiBytes = 16 * 1024 * 1024;
// RFC 2347: a request packet is at most 512 octets; larger ones are refused before their options are read.
const maxRequestBytes = 512;

/** netascii (RFC 764): LF becomes CR LF and a lone CR becomes CR NUL. */
async function netascii(source: TftpSource): Promise<TftpSource> {
  if (source.size > maxNetasciiBytes) throw new TftpError(TftpErrorCode.notDefined, 'File too large for netascii mode; use octet');
  const raw = await source.read(0, source.size);
  await source.close?.();
  // RFC 764: every CR goes as CR NUL and every LF as CR LF, so a CR LF in the file survives the trip.
  const text = raw.toString('latin1').replace(/\r/g, '\r\0').replace(/\n/g, '\r\n');
  return bufferSource(Buffer.from(text, 'latin1'));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A read-only TFTP server: it serves whatever `resolve` returns and knows nothing of files or machines. */
export class TftpServer {
  readonly #o: Settings;
  readonly #transfers = new Map<string, Entry>();
  readonly #perClient = new Map<string, number>();
  readonly #rate: RequestRateLimit | null;
  #socket: Socket | null = null;
  #pool: TransferPool | null = null;
  /** The transfer threads start with the first transfer that can use them, so an idle server holds none. */
  #poolStarting: Promise<TransferPool | null> | null = null;
  /** Main-thread transfers that ended and are closing their files: stop() waits for them. */
  readonly #closing = new Set<Promise<void>>();
  /** When each client address's boot began and when it last asked (processTime): transfers are admitted in that order. */
  readonly #sessions = new Map<string, { began: number; last: number }>();
  /** The address the listener is bound to; transfers bind their own ports there too. */
  #host = '';
  #stopping: Promise<void> | null = null;

  constructor(options: TftpServerOptions) {
    this.#o = {
      singlePort: false,
      maxTransfers: 1000,
      maxPerClient: 64,
      requestRate: defaultRequestRate,
      // Each thread costs about 25 MB; past a few, the sends and the kernel's delivery are what limit.
      workers: Math.min(availableParallelism(), 4),
      timeoutMs: 1000,
      retries: 5,
      unconfirmedRetries: 2,
      busyPollUs: 0,
      ...options,
      fileLimitMs: options.fileLimitMs === undefined ? 30_000 : options.fileLimitMs,
    };
    if (!(this.#o.busyPollUs >= 0)) throw new Error(`busyPollUs must be 0 or more, got ${this.#o.busyPollUs}`);
    if (this.#o.fileLimitMs !== null && !(this.#o.fileLimitMs > 0))
      throw new Error(`fileLimitMs must be above 0 or null, got ${this.#o.fileLimitMs}`);
    if (!Number.isInteger(this.#o.workers) || this.#o.workers < 0)
      throw new Error(`workers must be a whole number, got ${this.#o.workers}`);
    this.#rate = this.#o.requestRate ? new RequestRateLimit(this.#o.requestRate) : null;
  }

  get activeTransfers(): number {
    return this.#transfers.size;
  }

  /**
   * Takes a slot before the request is resolved, so that requests arriving together cannot pass the limits. When
   * the server (or this address) is full, the oldest transfer whose client never answered gives up its slot: a
   * flood of requests nobody acknowledges, which needs no replies and may come from spoofed addresses, cannot
   * keep a real client out.
   */
  #reserve(key: string, address: string, request: Buffer): Entry {
    const full = this.#transfers.size >= this.#o.maxTransfers;
    if ((full || (this.#perClient.get(address) ?? 0) >= this.#o.maxPerClient) && !this.#evictSilent(full ? null : address)) {
      throw new TftpError(TftpErrorCode.notDefined, 'Server busy; try again later');
    }
    const entry: Entry = { request, running: null, transfer: null, next: null, repeat: null, heard: false };
    this.#transfers.set(key, entry);
    this.#perClient.set(address, (this.#perClient.get(address) ?? 0) + 1);
    return entry;
  }

  /** Ends the oldest running transfer never acknowledged (of `address`, or of anyone) and frees its slot now. */
  #evictSilent(address: string | null): boolean {
    for (const [key, entry] of this.#transfers) {
      if (entry.heard || !entry.running) continue;
      const owner = key.slice(0, key.lastIndexOf('|'));
      if (address !== null && owner !== address) continue;
      this.#release(key, entry, owner);
      entry.running.end('timeout', 'never acknowledged, and its slot was needed');
      return true;
    }
    return false;
  }

  #release(key: string, entry: Entry, address: string, end?: TransferEnd): void {
    if (this.#transfers.get(key) !== entry) return;
    this.#transfers.delete(key);
    const left = (this.#perClient.get(address) ?? 1) - 1;
    if (left > 0) this.#perClient.set(address, left);
    else this.#perClient.delete(address);
    // The same request that came after the last packet of a transfer the client finished or ended is a new one
    // (a client asking twice from one port); one that came earlier was a retransmission.
    const { repeat } = entry;
    const asked = repeat && end && end.outcome !== 'timeout' && end.outcome !== 'error' && repeat.at > end.lastSentAt;
    const later = entry.next ?? (asked ? repeat : null);
    if (later && this.#socket && !this.#stopping) this.#onRequest(this.#socket, later.message, later.remote);
  }

  async start(): Promise<{ address: string; port: number }> {
    const socket = createSocket({ type: socketType(this.#o.host), ipv6Only: false });
    socket.on('message', (message, remote) => this.#onListenerMessage(socket, message, remote));
    socket.on('error', (error) => this.#o.onError?.(error));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#o.port, this.#o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.#socket = socket;
    const { address, port } = socket.address();
    this.#host = address;
    return { address, port };
  }

  /** Stops listening, ends every transfer (each is reported) and waits for their files and sockets to close. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    const closed = socket ? new Promise<void>((resolve) => socket.close(() => resolve())) : Promise.resolve();
    for (const entry of [...this.#transfers.values()]) entry.transfer?.end('error', 'server stopped');
    const pool = await this.#poolStarting;
    await Promise.all([closed, ...this.#closing, pool?.stop()]);
    // Requests still with the resolver are let go; they are reported when it answers.
    this.#transfers.clear();
    this.#perClient.clear();
    this.#sessions.clear();
  }

  /**
   * When the boot of the client at `address` began: its first request after a pause of a minute or more. A Pi that
   * restarts its boot after a failed file keeps its place. Kept in insertion order, refreshed on every request, so
   * the map's first entries are the longest idle.
   */
  #bootBegan(address: string, now: number): number {
    const session = this.#sessions.get(address);
    const began = session && now - session.last < sessionGapMs ? session.began : now;
    this.#sessions.delete(address);
    this.#sessions.set(address, { began, last: now });
    for (const [old, { last }] of this.#sessions) {
      if (this.#sessions.size <= maxSessions && now - last < sessionGapMs) break;
      this.#sessions.delete(old);
    }
    return began;
  }

  #onListenerMessage(socket: Socket, message: Buffer, remote: RemoteInfo): void {
    if (this.#stopping) return;
    const running = this.#transfers.get(`${remote.address}|${remote.port}`);
    // Past its rate a client is not answered: its own retransmission is the back-off, and a flood gets no replies.
    if (!running && this.#rate && !this.#rate.take(remote.address)) return;
    this.#onRequest(socket, message, remote);
  }

  #onRequest(socket: Socket, message: Buffer, remote: RemoteInfo): void {
    const key = `${remote.address}|${remote.port}`;
    const running = this.#transfers.get(key);
    if (message.length > maxRequestBytes && !running) {
      return this.#refuse(socket, remote, new TftpError(TftpErrorCode.illegalOperation, 'Request larger than 512 bytes'));
    }
    let packet: ReturnType<typeof decode>;
    try {
      packet = decode(message);
    } catch (error) {
      if (running) {
        if (this.#o.singlePort) running.transfer?.receive({ op: 'error', code: 0, message: 'malformed packet' });
        return;
      }
      return this.#refuse(socket, remote, error);
    }
    if (running) {
      // A repeated request (bootloaders retransmit them) belongs to the transfer already under way; a different one
      // (a Pi 3 asks for its files one after the other from one port) ends it and is served next.
      if (packet.op === 'rrq' || packet.op === 'wrq') {
        if (!message.equals(running.request)) this.#supersede(running, message, remote);
        else if (running.running) running.repeat = { message, remote, at: processTime() };
      } else if (this.#o.singlePort) {
        running.transfer?.receive(packet);
      }
      return;
    }
    if (packet.op === 'wrq') return this.#refuse(socket, remote, new TftpError(TftpErrorCode.accessViolation, 'Writes are not supported'));
    // Stray ACK, DATA or ERROR packets at the listening port belong to no transfer: no answer.
    if (packet.op !== 'rrq') return;
    let entry: Entry;
    try {
      entry = this.#reserve(key, remote.address, message);
    } catch (error) {
      return this.#refuse(socket, remote, error);
    }
    void this.#startTransfer(socket, remote, packet, key, entry).catch((error) => {
      if (!entry.next) this.#refuse(socket, remote, error);
      this.#release(key, entry, remote.address);
    });
  }

  #supersede(entry: Entry, message: Buffer, remote: RemoteInfo): void {
    entry.next = { message, remote };
    entry.running?.end('aborted', 'the client sent another request from the same port');
  }

  #refuse(socket: Socket, remote: RemoteInfo, error: unknown): void {
    const known = error instanceof TftpError;
    if (!known) this.#o.onError?.(error);
    if (this.#stopping) return;
    const code = known ? error.code : TftpErrorCode.notDefined;
    const text = known ? error.message : 'Internal error';
    socket.send(errorPacket(code, text), remote.port, remote.address, () => {});
  }

  async #startTransfer(listener: Socket, remote: RemoteInfo, packet: RequestPacket, key: string, entry: Entry): Promise<void> {
    if (packet.mode !== 'octet' && packet.mode !== 'netascii')
      throw new TftpError(TftpErrorCode.illegalOperation, `Mode ${packet.mode} is not supported`);
    const requestedAt = processTime();
    const order = { requestedAt, rank: this.#bootBegan(remote.address, requestedAt) };
    const from: TftpRemote = { address: remote.address, port: remote.port, family: remote.family as TftpRemote['family'] };
    const request: TftpRequest = {
      filename: packet.filename,
      path: safePath(packet.filename),
      mode: packet.mode,
      options: packet.options,
      remote: from,
    };
    let source = await this.#o.resolve(request);
    const startedAt = new Date();
    const started = performance.now();
    const report = (size: number, settings: { blksize: number; windowsize: number }, end: Omit<TransferEnd, 'lastSentAt'>) =>
      this.#report({
        request,
        size,
        blksize: settings.blksize,
        windowsize: settings.windowsize,
        startedAt,
        durationMs: performance.now() - started,
        ...end,
      });
    const unsettled = { blksize: 512, windowsize: 1 };
    if (this.#stopping || entry.next) {
      await source.close?.();
      report(
        source.size,
        unsettled,
        this.#stopping
          ? { outcome: 'error', error: 'server stopped', bytes: 0 }
          : { outcome: 'aborted', error: 'the client sent another request from the same port', bytes: 0 },
      );
      return this.#release(key, entry, remote.address);
    }
    let negotiated: ReturnType<typeof negotiate>;
    try {
      if (packet.mode === 'netascii') source = await netascii(source);
      negotiated = negotiate(packet.options, source.size, { ...this.#o, busyPollMs: this.#o.busyPollUs / 1000 });
    } catch (error) {
      await source.close?.();
      report(source.size, unsettled, { outcome: 'error', error: message(error), bytes: 0 });
      throw error;
    }
    const { settings, oack } = negotiated;
    if (source.transferable) await this.#transferPool();
    if (this.#stopping) {
      await source.close?.();
      report(source.size, settings, { outcome: 'error', error: 'server stopped', bytes: 0 });
      return this.#release(key, entry, remote.address);
    }
    const job: TransferJob = { host: this.#host, remote: from, size: source.size, settings, oack, order };
    this.#begin(listener, job, source, entry, (end) => {
      this.#release(key, entry, remote.address, end);
      const { lastSentAt, ...ended } = end;
      report(source.size, settings, ended);
    });
  }

  /** The transfer threads, started on first use; null when there are none (workers 0, singlePort, or they failed). */
  #transferPool(): Promise<TransferPool | null> {
    if (this.#o.workers === 0 || this.#o.singlePort) return Promise.resolve(null);
    this.#poolStarting ??= TransferPool.start(this.#o.workers, (e) => this.#o.onError?.(e)).then(
      (pool) => {
        this.#pool = pool;
        return pool;
      },
      (error: unknown) => {
        // Transfers run on the main thread then; the next one tries the threads again.
        this.#o.onError?.(error);
        this.#poolStarting = null;
        return null;
      },
    );
    return this.#poolStarting;
  }

  /** On a worker when the source can move there; else on this thread, from its own port or the listener's. */
  #begin(listener: Socket, job: TransferJob, source: TftpSource, entry: Entry, onEnd: (end: TransferEnd) => void): void {
    const { transferable } = source;
    // A transferable source is read anew from its path or bytes wherever the transfer runs.
    if (transferable) void source.close?.().catch(() => {});
    const onHeard = () => {
      entry.heard = true;
    };
    entry.running = transferable ? (this.#pool?.run(job, transferable, onEnd, onHeard) ?? null) : null;
    if (entry.running) return;
    const reader = transferable ? transferableReader(transferable) : sourceReader(source);
    const onLocalEnd = (end: TransferEnd) => {
      const closed = transfer.closed;
      if (closed) {
        this.#closing.add(closed);
        void closed.then(() => this.#closing.delete(closed));
      }
      onEnd(end);
    };
    const transfer = this.#o.singlePort
      ? runOnListener(listener, job, reader, onLocalEnd, onHeard)
      : runOnOwnPort(job, reader, onLocalEnd, (error) => this.#o.onError?.(error), onHeard);
    entry.running = transfer;
    entry.transfer = transfer;
  }

  #report(report: TftpTransferReport): void {
    try {
      this.#o.onTransferEnd?.(report);
    } catch (error) {
      this.#o.onError?.(error);
    }
  }
}
