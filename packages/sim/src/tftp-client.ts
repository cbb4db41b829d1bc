import { createHash, type Hash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ackPacket, decodeServerPacket, ErrorCode, errorPacket, rrqPacket } from './tftp-packet.ts';

export interface TftpGetOptions {
  host: string;
  port: number;
  filename: string;
  /** Source address to send from, e.g. one 127.x.y.z per simulated device. */
  localAddress?: string;
  /** Source port; when it is taken, the next free one above it. Without it, the system picks one. */
  localPort?: number;
  /** RFC 2348 block size to ask for; without it, 512-byte blocks. */
  blksize?: number;
  /** Ask for the size (RFC 2349 `tsize 0`). */
  tsize?: boolean;
  /** RFC 2349 `timeout` in seconds to ask the server for. */
  timeout?: number;
  /** RFC 7440 window size to ask for. */
  windowsize?: number;
  /**
   * End the transfer on purpose with an ERROR packet: `oack` right after the option acknowledgement (a size
   * probe), `first-block` after the first DATA block (an existence probe). Either counts as success.
   */
  abort?: 'oack' | 'first-block';
  /** Silence after which the last packet (request or ACK) is sent again. */
  retransmitMs?: number;
  /** The whole file must have arrived by then. */
  fileTimeoutMs?: number;
  /** Keep the bytes (up to 16 MiB) in the result, e.g. to read a config file. */
  keep?: boolean;
  /** Hash the bytes (sha256) as they arrive. */
  hash?: boolean;
  signal?: AbortSignal;
}

export interface TftpFailure {
  /** `server`: the server sent ERROR `code`; `client`: this side gave up (timeout, bad reply). */
  from: 'server' | 'client';
  code: number | null;
  message: string;
}

export interface TftpGetResult {
  filename: string;
  /** The file arrived whole, or was ended on purpose as `abort` asked. */
  ok: boolean;
  aborted: boolean;
  /** What answered the request first: DATA, OACK, ERROR, or nothing (null). */
  firstReply: 'data' | 'oack' | 'error' | null;
  oack: Record<string, string> | null;
  tsize: number | null;
  bytes: number;
  blocks: number;
  retransmits: number;
  ms: number;
  error: TftpFailure | null;
  /** The source port the request went from (0 when no socket could be opened). */
  localPort: number;
  data?: Buffer;
  sha256?: string;
}

/** A result before anything has arrived. */
function notStarted(filename: string, localPort: number): Omit<TftpGetResult, 'ms'> {
  return {
    filename,
    ok: false,
    aborted: false,
    firstReply: null,
    oack: null,
    tsize: null,
    bytes: 0,
    blocks: 0,
    retransmits: 0,
    error: null,
    localPort,
  };
}

const maxKeptBytes = 16 * 1024 * 1024;
const earlyTerminate = { code: ErrorCode.notDefined, message: 'Early terminate' };

function checkRange(name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}`);
  }
}

/** Options in the order a Raspberry Pi bootloader sends them: `tsize 0 blksize 1468`. */
function requestedOptions(o: TftpGetOptions): [string, string][] {
  const options: [string, string][] = [];
  if (o.tsize) options.push(['tsize', '0']);
  if (o.blksize !== undefined) options.push(['blksize', String(o.blksize)]);
  if (o.timeout !== undefined) options.push(['timeout', String(o.timeout)]);
  if (o.windowsize !== undefined) options.push(['windowsize', String(o.windowsize)]);
  return options;
}

function wholeNumber(value: string | undefined): number | null {
  return value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : null;
}

/** One RFC 1350 read with options, over its own socket (its own transfer id). */
class Reader {
  readonly #o: TftpGetOptions;
  readonly #server: { address: string; port: number };
  readonly #socket: Socket;
  readonly #requested: [string, string][];
  readonly #started = performance.now();
  readonly #chunks: Buffer[] = [];
  readonly #hash: Hash | null;
  readonly #resolve: (result: TftpGetResult) => void;
  #tid: number | null = null;
  #state: 'request' | 'oack' | 'data' | 'done' = 'request';
  #blksize = 512;
  #windowsize = 1;
  #expected = 1;
  #inWindow = 0;
  #gapAcked = false;
  #last: Buffer;
  #retransmit: NodeJS.Timeout | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #result: Omit<TftpGetResult, 'ms'>;

  constructor(o: TftpGetOptions, address: string, socket: Socket, resolve: (result: TftpGetResult) => void) {
    this.#o = o;
    this.#server = { address, port: o.port };
    this.#resolve = resolve;
    this.#requested = requestedOptions(o);
    this.#hash = o.hash ? createHash('sha256') : null;
    this.#last = rrqPacket(o.filename, 'octet', this.#requested);
    this.#result = notStarted(o.filename, socket.address().port);
    this.#socket = socket;
  }

  start(): void {
    const socket = this.#socket;
    socket.on('message', (message, remote) => this.#receive(message, remote));
    socket.on('error', (error) => this.#fail('client', null, error.message));
    this.#o.signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (this.#o.signal?.aborted) return this.#onAbort();
    const retransmitMs = this.#o.retransmitMs ?? 1000;
    const fileTimeoutMs = this.#o.fileTimeoutMs ?? 30_000;
    this.#deadline = setTimeout(() => this.#fail('client', null, `no whole file within ${fileTimeoutMs} ms`), fileTimeoutMs);
    this.#retransmit = setTimeout(() => this.#resend(), retransmitMs);
    this.#send(this.#last);
  }

  readonly #onAbort = () => this.#fail('client', null, 'aborted');

  #send(packet: Buffer, then?: () => void): void {
    this.#socket.send(packet, this.#server.port, this.#server.address, then ?? (() => {}));
  }

  #resend(): void {
    if (this.#state === 'done') return;
    this.#result.retransmits++;
    this.#send(this.#last);
    this.#retransmit?.refresh();
  }

  /** Something new arrived: the retransmission clock starts over. */
  #progress(): void {
    this.#retransmit?.refresh();
    this.#gapAcked = false;
  }

  #acknowledge(block: number): void {
    this.#last = ackPacket(block);
    this.#send(this.#last);
  }

  #receive(message: Buffer, remote: RemoteInfo): void {
    if (this.#state === 'done') return;
    const fromServer = remote.address === this.#server.address && (this.#tid === null || remote.port === this.#tid);
    if (!fromServer) {
      // RFC 1350: a packet from a stranger gets ERROR 5 and does not disturb the transfer.
      this.#socket.send(errorPacket(ErrorCode.unknownTransferId, 'Unknown transfer ID'), remote.port, remote.address, () => {});
      return;
    }
    this.#tid = remote.port;
    // Replies now come from the transfer's port; retransmitted ACKs go there, not to the listening port.
    this.#server.port = remote.port;
    const packet = decodeServerPacket(message);
    if (packet.op === 'error') {
      this.#result.firstReply ??= 'error';
      return this.#fail('server', packet.code, packet.message);
    }
    if (packet.op === 'oack') return this.#onOack(packet.options);
    if (packet.op === 'data') return this.#onData(packet.block, packet.payload);
    this.#refuse(ErrorCode.notDefined, `unexpected packet: ${packet.reason}`);
  }

  #onOack(options: Record<string, string>): void {
    if (this.#state === 'oack' && this.#expected === 1) return this.#acknowledge(0);
    if (this.#state !== 'request') return;
    this.#result.firstReply = 'oack';
    const problem = this.#settle(options);
    if (problem) return this.#refuse(ErrorCode.optionNegotiation, problem);
    this.#result.oack = options;
    this.#progress();
    if (this.#o.abort === 'oack') return this.#abortOnPurpose();
    this.#state = 'oack';
    this.#acknowledge(0);
  }

  /** Applies an OACK; returns what is wrong with it, if anything (RFC 2347: only options asked for, no larger values). */
  #settle(options: Record<string, string>): string | null {
    const asked = new Map(this.#requested);
    for (const [name, value] of Object.entries(options)) {
      if (!asked.has(name)) return `OACK names option ${name}, which was not requested`;
      const number = wholeNumber(value);
      if (number === null) return `OACK ${name} ${JSON.stringify(value)} is not a number`;
      if (name === 'blksize' && (number < 8 || number > Number(asked.get(name))))
        return `OACK blksize ${number} is not 8 to the size asked for`;
      if (name === 'windowsize' && (number < 1 || number > Number(asked.get(name)))) return `OACK windowsize ${number} is out of range`;
      if (name === 'timeout' && (number < 1 || number > 255)) return `OACK timeout ${number} is out of range`;
    }
    this.#blksize = wholeNumber(options.blksize) ?? 512;
    this.#windowsize = wholeNumber(options.windowsize) ?? 1;
    this.#result.tsize = wholeNumber(options.tsize);
    return null;
  }

  #onData(block: number, payload: Buffer): void {
    // DATA without OACK: the server ignored every option (RFC 2347), so the RFC 1350 defaults apply.
    if (this.#state === 'request') this.#result.firstReply = 'data';
    this.#state = 'data';
    if (block !== this.#expected) {
      // A duplicate or a gap: acknowledge the last block received in order, once until data moves again.
      if (!this.#gapAcked) this.#acknowledge((this.#expected - 1) & 0xffff);
      this.#gapAcked = true;
      this.#inWindow = 0;
      return;
    }
    if (payload.length > this.#blksize) return this.#refuse(ErrorCode.notDefined, `DATA larger than the block size ${this.#blksize}`);
    this.#take(payload);
    this.#progress();
    if (this.#o.abort) return this.#abortOnPurpose();
    if (payload.length < this.#blksize) return this.#complete(block);
    this.#expected = (block + 1) & 0xffff;
    if (++this.#inWindow >= this.#windowsize) {
      this.#inWindow = 0;
      this.#acknowledge(block);
    }
  }

  #take(payload: Buffer): void {
    this.#result.blocks++;
    this.#result.bytes += payload.length;
    this.#hash?.update(payload);
    if (!this.#o.keep) return;
    if (this.#result.bytes > maxKeptBytes) return this.#refuse(ErrorCode.notDefined, 'file too large to keep in memory');
    this.#chunks.push(payload);
  }

  #complete(block: number): void {
    const { tsize, bytes } = this.#result;
    this.#finish(ackPacket(block));
    if (tsize !== null && tsize !== bytes) {
      this.#result.error = { from: 'client', code: null, message: `received ${bytes} bytes, the server announced ${tsize}` };
    } else {
      this.#result.ok = true;
    }
    this.#report();
  }

  #abortOnPurpose(): void {
    this.#finish(errorPacket(earlyTerminate.code, earlyTerminate.message));
    this.#result.ok = true;
    this.#result.aborted = true;
    this.#report();
  }

  /** Tells the server why this side gives up, then fails. */
  #refuse(code: number, message: string): void {
    this.#finish(errorPacket(code, message));
    this.#result.error = { from: 'client', code: null, message };
    this.#report();
  }

  #fail(from: 'server' | 'client', code: number | null, message: string): void {
    if (this.#state === 'done') return;
    this.#finish(null);
    this.#result.error = { from, code, message };
    this.#report();
  }

  /** Stops timers and closes the socket, after sending `last` when given. */
  #finish(last: Buffer | null): void {
    this.#state = 'done';
    if (this.#retransmit) clearTimeout(this.#retransmit);
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#o.signal?.removeEventListener('abort', this.#onAbort);
    const close = () => {
      try {
        this.#socket.close();
      } catch {}
    };
    if (last) this.#send(last, close);
    else close();
  }

  #report(): void {
    const result: TftpGetResult = { ...this.#result, ms: performance.now() - this.#started };
    if (this.#o.keep) result.data = Buffer.concat(this.#chunks);
    if (this.#hash && result.ok && !result.aborted) result.sha256 = this.#hash.digest('hex');
    this.#resolve(result);
  }
}

function bind(socket: Socket, port: number, address: string | undefined): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const failed = (error: NodeJS.ErrnoException) => resolve(error);
    socket.once('error', failed);
    socket.bind(port, address, () => {
      socket.off('error', failed);
      resolve(null);
    });
  });
}

// A taken source port is skipped this many times before giving up.
const portAttempts = 64;

/** A socket bound to `localPort` or the next free port above it, or to a port the system picks. */
async function openSocket(family: 'udp4' | 'udp6', options: TftpGetOptions): Promise<Socket | Error> {
  const first = options.localPort ?? 0;
  for (let attempt = 0; attempt < (first === 0 ? 1 : portAttempts); attempt++) {
    const socket = createSocket(family);
    const port = first === 0 ? 0 : 1024 + ((first - 1024 + attempt) % (65536 - 1024));
    const error = await bind(socket, port, options.localAddress);
    if (!error) return socket;
    socket.close();
    if (error.code !== 'EADDRINUSE') return error;
  }
  return new Error(`no free source port from ${first}`);
}

function failedBeforeSending(filename: string, message: string): TftpGetResult {
  return { ...notStarted(filename, 0), ms: 0, error: { from: 'client', code: null, message } };
}

/** Reads one file over TFTP. Never rejects for network trouble: the result says what went wrong. */
export async function tftpGet(options: TftpGetOptions): Promise<TftpGetResult> {
  checkRange('port', options.port, 1, 65535);
  checkRange('localPort', options.localPort, 0, 65535);
  checkRange('blksize', options.blksize, 8, 65464);
  checkRange('timeout', options.timeout, 1, 255);
  checkRange('windowsize', options.windowsize, 1, 65535);
  let address = options.host;
  if (!isIP(address)) {
    try {
      address = (await lookup(options.host)).address;
    } catch (error) {
      return failedBeforeSending(options.filename, `cannot resolve ${options.host}: ${(error as Error).message}`);
    }
  }
  const socket = await openSocket(isIP(address) === 6 ? 'udp6' : 'udp4', options);
  if (socket instanceof Error) return failedBeforeSending(options.filename, socket.message);
  return new Promise((resolve) => new Reader(options, address, socket, resolve).start());
}
