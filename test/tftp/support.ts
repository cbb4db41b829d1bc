import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe } from 'node:test';
import {
  ackPacket,
  dataPacket,
  errorPacket,
  type Packet as Parsed,
  parsePacket as parse,
  rrqPacket,
  wrqPacket,
} from '@muster/sim/tftp-packet.ts';
import { directoryResolver } from '../../packages/server/src/boot/tftp/directory.ts';
import { TftpServer, type TftpServerOptions } from '../../packages/server/src/boot/tftp/server.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures: generated on every run, nothing binary is committed.
// ---------------------------------------------------------------------------------------------

/** Deterministic bytes (mulberry32), so a failure reproduces with the same content. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i += 4) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const value = (t ^ (t >>> 14)) >>> 0;
    for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (value >>> (8 * j)) & 0xff;
  }
  return out;
}

/** Text with LF line endings only (netascii must send CR LF for each LF). */
export const textContent = `${Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog`).join('\n')}\n`;

/** The files served from the root, by request name. */
export const fixtureFiles: Record<string, Buffer> = {
  'big.bin': pseudoRandomBytes(3 * 1024 * 1024, 0x5eed),
  'exact512.bin': pseudoRandomBytes(512, 512),
  'exact1024.bin': pseudoRandomBytes(1024, 1024),
  'empty.bin': Buffer.alloc(0),
  'text.txt': Buffer.from(textContent, 'latin1'),
  'aa112233/config.txt': Buffer.from('# Raspberry Pi 5 config\narm_64bit=1\nenable_uart=1\n', 'latin1'),
  /** 10 blocks of 512 (the last one short): for the Sorcerer's Apprentice test. */
  'ten-blocks.bin': pseudoRandomBytes(9 * 512 + 300, 10),
  /** With blksize 8: 65,549 blocks, so block numbers pass 65535. */
  'rollover.bin': pseudoRandomBytes(65536 * 8 + 100, 65536),
  /** Bare CR in a text file: netascii sends CR NUL. */
  'cr.txt': Buffer.from('a\rb\r\nc\n', 'latin1'),
};

/** Content a correct server never sends: it lives next to the root, not under it. */
export const secretContent = 'TOP-SECRET-OUTSIDE-THE-ROOT\n';

export interface Fixtures {
  /** The temporary directory holding the root and the secret files beside it. */
  base: string;
  /** The directory the server serves. */
  root: string;
  cleanup(): void;
}

/**
 * base/
 *   x, secret.txt        outside the root (traversal targets)
 *   root/                served
 *     ...fixtureFiles
 *     escape.txt -> ../secret.txt   (a symlink leaving the root)
 *     inside-link.txt -> exact512.bin
 */
export function makeFixtures(): Fixtures {
  const base = mkdtempSync(join(tmpdir(), 'muster-tftp-'));
  const root = join(base, 'root');
  mkdirSync(root);
  writeFileSync(join(base, 'x'), secretContent);
  writeFileSync(join(base, 'secret.txt'), secretContent);
  for (const [name, content] of Object.entries(fixtureFiles)) {
    const path = join(root, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
  symlinkSync('../secret.txt', join(root, 'escape.txt'));
  symlinkSync('exact512.bin', join(root, 'inside-link.txt'));
  return { base, root, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Every file name under a directory, recursively, sorted: to prove nothing was written. */
export function listTree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

export interface RunningTftp {
  server: TftpServer;
  host: string;
  port: number;
  fixtures: Fixtures;
  stop(): Promise<void>;
}

/** How transfers run: on worker threads (the default) or on the main thread (workers: 0). */
export const threadModes = [
  { label: 'transfers on worker threads', workers: 2 },
  { label: 'transfers on the main thread', workers: 0 },
] as const;

let workersForTests: number = threadModes[0].workers;

/** Registers the suites `body` declares once for each thread mode; startTftp follows the mode of the suite running. */
export function eachThreadMode(body: () => void): void {
  for (const mode of threadModes) {
    describe(mode.label, () => {
      before(() => {
        workersForTests = mode.workers;
      });
      body();
    });
  }
}

/** Starts a TftpServer on an ephemeral port serving freshly generated fixtures. */
export async function startTftp(options: Partial<TftpServerOptions> = {}): Promise<RunningTftp> {
  const fixtures = makeFixtures();
  // Tests ask many times a second from one address: the request rate limit has tests of its own.
  const server = new TftpServer({
    host: '127.0.0.1',
    port: 0,
    resolve: directoryResolver(fixtures.root),
    requestRate: null,
    workers: workersForTests,
    ...options,
  });
  const { port } = await server.start();
  const host = options.host ?? '127.0.0.1';
  return {
    server,
    host: host === '::' ? '::1' : host,
    port,
    fixtures,
    async stop() {
      await withTimeout(server.stop(), 5000, 'TftpServer.stop()');
      fixtures.cleanup();
    },
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `condition` every 20 ms for at most `ms`; resolves with its last value. */
export async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await sleep(20);
  }
  return condition();
}

// ---------------------------------------------------------------------------------------------
// Real clients. The server runs in this process, so clients must run asynchronously (execFile),
// never with spawnSync, which would block the event loop the server answers from.
// ---------------------------------------------------------------------------------------------

export interface ClientResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for assertion messages and error-text checks. */
  output: string;
}

export function run(command: string, args: string[], timeoutMs = 20_000): Promise<ClientResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: number | string; signal?: string }) | null;
        const code = failure ? (typeof failure.code === 'number' ? failure.code : null) : 0;
        resolve({
          code,
          signal: failure?.signal ?? null,
          stdout,
          stderr,
          output: `$ ${command} ${args.join(' ')}\nexit ${code} signal ${failure?.signal ?? '-'}\n${stdout}${stderr}`,
        });
      },
    );
  });
}

/** True when a client run reports failure: tftp-hpa exits 0 on an ERROR packet, but says "Error code N". */
export function clientFailed(result: ClientResult): boolean {
  return result.code !== 0 || result.signal !== null || /error|fail|abort|timed? ?out|transfer timed/i.test(result.stdout + result.stderr);
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** tftp-hpa: no TFTP options at all (it only speaks RFC 1350). mode: 'binary' (octet) or 'ascii' (netascii). */
export function tftpHpaGet(host: string, port: number, name: string, out: string, mode: 'binary' | 'ascii' = 'binary') {
  const family = host.includes(':') ? '-6' : '-4';
  return run('tftp', [family, '-l', '-m', mode, host, String(port), '-c', 'get', name, out]);
}

export function tftpHpaPut(host: string, port: number, local: string, remoteName: string) {
  const family = host.includes(':') ? '-6' : '-4';
  return run('tftp', [family, '-l', '-m', 'binary', host, String(port), '-c', 'put', local, remoteName]);
}

/** atftp; options as "name value" strings, e.g. 'blksize 1468', 'tsize 0', 'windowsize 8'. */
export function atftpGet(host: string, port: number, name: string, out: string, options: string[] = []) {
  const args = ['--get', '-r', name, '-l', out, '--tftp-timeout', '1'];
  for (const option of options) args.push('--option', option);
  args.push(host, String(port));
  return run('atftp', args);
}

/** curl; args e.g. ['--tftp-blksize', '1468'] or ['--tftp-no-options']. The name goes into the URL as is (--path-as-is). */
export function curlGet(host: string, port: number, name: string, out: string, args: string[] = []) {
  return run('curl', ['-sS', '--path-as-is', '--max-time', '15', '-o', out, ...args, `tftp://${bracket(host)}:${port}/${name}`]);
}

export function curlPut(host: string, port: number, local: string, remoteName: string) {
  return run('curl', ['-sS', '--max-time', '15', '-T', local, `tftp://${bracket(host)}:${port}/${remoteName}`]);
}

// ---------------------------------------------------------------------------------------------
// Raw protocol client over node:dgram, for byte-level tests.
// ---------------------------------------------------------------------------------------------

export { Opcode as Op, type Packet as Parsed, parsePacket as parse } from '@muster/sim/tftp-packet.ts';

type OptionList = [string, string][] | Record<string, string>;

function optionList(options: OptionList | undefined): [string, string][] {
  if (!options) return [];
  return Array.isArray(options) ? options : Object.entries(options);
}

export const packet = {
  rrq: (filename: string, options?: OptionList, mode = 'octet') => rrqPacket(filename, mode, optionList(options)),
  wrq: (filename: string, options?: OptionList, mode = 'octet') => wrqPacket(filename, mode, optionList(options)),
  ack: ackPacket,
  data: dataPacket,
  error: errorPacket,
};

/** An OACK's options as an object (lower-cased names); throws when a name appears twice. */
export function oackOptions(parsed: Parsed): Record<string, string> {
  if (parsed.op !== 'oack') throw new Error(`expected OACK, got ${show(parsed)}`);
  const out: Record<string, string> = {};
  for (const [name, value] of parsed.options) {
    const key = name.toLowerCase();
    if (key in out) throw new Error(`OACK names option ${key} twice: ${JSON.stringify(parsed.options)}`);
    out[key] = value;
  }
  return out;
}

export function show(parsed: Parsed | null): string {
  if (!parsed) return 'nothing';
  switch (parsed.op) {
    case 'data':
      return `DATA ${parsed.block} (${parsed.payload.length} bytes)`;
    case 'ack':
      return `ACK ${parsed.block}`;
    case 'error':
      return `ERROR ${parsed.code} ${JSON.stringify(parsed.message)}`;
    case 'oack':
      return `OACK ${JSON.stringify(parsed.options)}`;
    default:
      return `${parsed.op} ${parsed.raw.toString('hex').slice(0, 80)}`;
  }
}

export interface Received {
  packet: Parsed;
  raw: Buffer;
  address: string;
  port: number;
  at: number;
}

/** A UDP socket with a queue of received datagrams and a `receive(timeout)` that resolves with null on timeout. */
export class RawClient {
  readonly socket: dgram.Socket;
  private readonly queue: Received[] = [];
  private waiter: ((value: Received | null) => void) | null = null;
  private timer: NodeJS.Timeout | undefined;
  readonly server: { host: string; port: number };

  private constructor(socket: dgram.Socket, server: { host: string; port: number }) {
    this.socket = socket;
    this.server = server;
    socket.on('message', (raw, rinfo) => {
      const item: Received = { packet: parse(raw), raw, address: rinfo.address, port: rinfo.port, at: performance.now() };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        clearTimeout(this.timer);
        w(item);
      } else this.queue.push(item);
    });
  }

  static async open(server: { host: string; port: number }): Promise<RawClient> {
    const family = server.host.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type: family, recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, server.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => {});
    socket.unref(); // a test that fails before close() must not keep the process alive
    return new RawClient(socket, server);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends to the server's listening port unless `port` is given (a transfer's port). */
  send(data: Buffer, port = this.server.port): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, this.server.host, (error) => (error ? reject(error) : resolve())));
  }

  receive(timeoutMs = 2000): Promise<Received | null> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.waiter) throw new Error('RawClient.receive called twice concurrently');
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
    });
  }

  /** Receives and fails with a readable message unless something arrives in time. */
  async expect(timeoutMs = 2000): Promise<Received> {
    const got = await this.receive(timeoutMs);
    if (!got) throw new Error(`no reply within ${timeoutMs} ms`);
    return got;
  }

  /** Everything that arrives within `ms`. */
  async collect(ms: number, limit = 100_000): Promise<Received[]> {
    const out: Received[] = [];
    const deadline = performance.now() + ms;
    while (out.length < limit) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const got = await this.receive(left);
      if (!got) break;
      out.push(got);
    }
    return out;
  }

  close(): void {
    clearTimeout(this.timer);
    try {
      this.socket.close();
    } catch {}
  }
}

export interface RawGetResult {
  /** The file's bytes, or null when the server answered with an ERROR. */
  content: Buffer | null;
  oack: Record<string, string> | null;
  error: { code: number; message: string } | null;
  /** The port the transfer was answered from. */
  transferPort: number;
  dataPackets: number;
  /** The block numbers in the order received (only kept when `keepBlocks`). */
  blocks: number[];
}

/**
 * Downloads a file over the raw client, acknowledging as RFC 1350 / RFC 7440 say: an ACK after every
 * `windowsize` blocks in order (or at the short last block), and an ACK of the last good block on a gap.
 * Bounded by `deadlineMs`.
 */
export async function rawGet(
  client: RawClient,
  filename: string,
  options: OptionList = [],
  settings: { mode?: string; deadlineMs?: number; keepBlocks?: boolean } = {},
): Promise<RawGetResult> {
  const deadline = performance.now() + (settings.deadlineMs ?? 20_000);
  await client.send(packet.rrq(filename, options, settings.mode ?? 'octet'));
  let first = await client.expect(3000);
  const result: RawGetResult = { content: null, oack: null, error: null, transferPort: first.port, dataPackets: 0, blocks: [] };
  let blksize = 512;
  let windowsize = 1;
  if (first.packet.op === 'error') {
    result.error = { code: first.packet.code, message: first.packet.message };
    return result;
  }
  if (first.packet.op === 'oack') {
    result.oack = oackOptions(first.packet);
    if (result.oack.blksize) blksize = Number(result.oack.blksize);
    if (result.oack.windowsize) windowsize = Number(result.oack.windowsize);
    await client.send(packet.ack(0), first.port);
    first = await client.expect(3000);
  }
  const chunks: Buffer[] = [];
  let expected = 1; // next block number wanted (mod 65536)
  let inWindow = 0;
  let next: Received | null = first;
  while (next) {
    if (performance.now() > deadline) throw new Error(`rawGet ${filename}: not finished in time after ${result.dataPackets} DATA packets`);
    const p = next.packet;
    if (next.port !== result.transferPort)
      throw new Error(`rawGet: packet from port ${next.port}, transfer port is ${result.transferPort}`);
    if (p.op === 'error') {
      result.error = { code: p.code, message: p.message };
      return result;
    }
    if (p.op !== 'data') throw new Error(`rawGet: expected DATA, got ${show(p)}`);
    result.dataPackets++;
    if (settings.keepBlocks) result.blocks.push(p.block);
    if (p.block === expected) {
      chunks.push(Buffer.from(p.payload));
      const last = p.payload.length < blksize;
      inWindow++;
      if (last || inWindow >= windowsize) {
        await client.send(packet.ack(p.block), result.transferPort);
        inWindow = 0;
      }
      if (last) {
        result.content = Buffer.concat(chunks);
        return result;
      }
      expected = (expected + 1) & 0xffff;
    } else if (((expected - p.block) & 0xffff) > 0x8000) {
      // A block ahead of the one wanted: a gap. Acknowledge the last good block so the server resends from there.
      await client.send(packet.ack((expected - 1) & 0xffff), result.transferPort);
      inWindow = 0;
    }
    next = await client.receive(3000);
  }
  throw new Error(`rawGet ${filename}: server went silent after ${result.dataPackets} DATA packets (waiting for block ${expected})`);
}
