// TFTP throughput against tftpd-hpa and dnsmasq, all three started on loopback in this run: 1/8/32/128 concurrent curl
// clients fetch an 8 MiB file at blksize 512 and 1468 from each server in turn (paired runs, medians); muster also
// through atftp with windowsize 8 and 16; then muster's RSS while 1,000 slow transfers are in flight.
// Alone: node bench/tftp.ts [--runs 5] [--clients 1,8,32,128] [--blksizes 512,1468] [--file-mib 8] [--skip-rss]
//   [--skip-throughput]
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure, median, oneLine } from './lib/figures.ts';
import { procCpuSeconds, procMemoryMiB } from './lib/proc.ts';
import { log, onCleanup, runMain, sleep, tempDir } from './lib/run.ts';
import { adminToken, nodeBin, root, startServer, waitExit } from './lib/server.ts';

export interface TftpBenchOptions {
  runs?: number;
  clients?: number[];
  blksizes?: number[];
  fileMiB?: number;
  /** Skip the 1,000-transfer memory measurement. */
  skipRss?: boolean;
  /** Skip the throughput matrix (only the memory measurement). */
  skipThroughput?: boolean;
  /** Start no more runs after this long (the cells left are reported as errors). */
  budgetS?: number;
  /** Which muster: `serve` (muster serve with the file published as an artifact, the default) or `standalone`. */
  muster?: 'serve' | 'standalone';
}

type ServerName = 'muster' | 'tftpd-hpa' | 'dnsmasq';
const peerNames: ServerName[] = ['tftpd-hpa', 'dnsmasq'];

/** The issue's targets: at least the faster peer's throughput in every cell; windowsize 16 at least 3× dnsmasq's best. */
const windowFactor = 3;
const rssTargetMiB = 250;
const rssTransfers = 1000;
/** A bound on each run: a client still running after this is killed and counted as failed. */
const runTimeoutS = 90;
const fileName = 'file.bin';
const bench = 'tftp';

interface ServedTftp {
  name: ServerName;
  port: number;
  pid: number;
  /** CPU seconds used so far, with the reaped children (tftpd-hpa forks a process per transfer). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Tracked {
  child: ChildProcess;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Spawns a long-running process that is stopped (by its PID) at cleanup if not before. */
function spawnTracked(command: string, args: string[]): Tracked {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const add = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  child.on('error', (error) => add(Buffer.from(`\n${error.message}`)));
  const exited = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  const stop = async () => {
    unregister();
    if (exited()) return;
    child.kill('SIGTERM');
    if (!(await waitExit(child, 3000))) {
      child.kill('SIGKILL');
      await waitExit(child, 2000);
    }
  };
  const unregister = onCleanup(stop);
  return { child, output: () => tail, exited, stop };
}

/**
 * CPU seconds of a process and every process it forks from now on, through a cgroup of its own (tftpd-hpa forks a
 * process per transfer and ignores SIGCHLD, so its children's time never reaches its own counters). NaN where no
 * cgroup can be made (not root, or no cpuacct controller).
 */
function forkingCpu(pid: number): () => number {
  const candidates = [
    { dir: '/sys/fs/cgroup/cpuacct', read: (g: string) => Number(readFileSync(join(g, 'cpuacct.usage'), 'utf8')) / 1e9 },
    { dir: '/sys/fs/cgroup/unified', read: (g: string) => usageUsec(g) },
    { dir: '/sys/fs/cgroup', read: (g: string) => usageUsec(g) },
  ];
  for (const { dir, read } of candidates) {
    const group = join(dir, `muster-bench-tftpd-${pid}`);
    try {
      mkdirSync(group);
      writeFileSync(join(group, 'cgroup.procs'), String(pid));
      read(group);
      onCleanup(() => removeGroup(dir, group));
      return () => {
        try {
          return read(group);
        } catch {
          return Number.NaN;
        }
      };
    } catch {
      try {
        rmdirSync(group);
      } catch {}
    }
  }
  return () => Number.NaN;
}

/** Moves what is left in the group (a child still exiting) back to the root group, then removes it. */
function removeGroup(parent: string, group: string): void {
  for (const pid of readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try {
      writeFileSync(join(parent, 'cgroup.procs'), pid);
    } catch {}
  }
  rmdirSync(group);
}

function usageUsec(group: string): number {
  const match = /^usage_usec (\d+)/m.exec(readFileSync(join(group, 'cpu.stat'), 'utf8'));
  if (!match) throw new Error('no usage_usec');
  return Number(match[1]) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// UDP helpers

function udpSocket(address = '127.0.0.1', port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

async function freeUdpPort(): Promise<number> {
  const socket = await udpSocket();
  const { port } = socket.address();
  socket.close();
  return port;
}

function rrq(name: string, options: Record<string, string> = {}): Buffer {
  const fields = [name, 'octet', ...Object.entries(options).flat()].map((f) => `${f}\0`).join('');
  return Buffer.concat([Buffer.from([0, 1]), Buffer.from(fields, 'latin1')]);
}

function ackPacket(block: number): Buffer {
  return Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
}

/** True once the server answers a read request (for a missing file) within `ms`. */
async function answers(port: number, ms: number): Promise<boolean> {
  const socket = await udpSocket();
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      socket.once('message', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.send(rrq('muster-bench-readiness-probe'), port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

async function waitAnswering(name: string, port: number, tracked: Tracked, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (tracked.exited()) throw new Error(`${name} exited before it answered: ${tracked.output().trim().slice(-800)}`);
    if (await answers(port, 250)) return;
  }
  throw new Error(`${name} did not answer on 127.0.0.1:${port} within ${ms} ms: ${tracked.output().trim().slice(-800)}`);
}

// ---------------------------------------------------------------------------------------------
// The three servers

/**
 * muster's TFTP server in a process of its own: today a TftpServer with a directoryResolver (bench/tftp-server.ts),
 * later `muster serve --tftp-listen`. atftp cannot choose its source address, so its 128 clients all come from
 * 127.0.0.1: the per-client limits are raised as far as the peers' (which have none).
 */
/**
 * muster as users run it: `muster serve` on SQLite with TFTP on a free loopback port, the file uploaded through
 * the API and published under its name, which TFTP serves (as it serves iPXE binaries to PXE ROMs). The clients
 * all come from 127.0.0.1, so the per-address TFTP limits are raised as far as the peers' (which have none).
 */
export async function startMusterServe(dir: string, env: Record<string, string> = {}): Promise<ServedTftp> {
  const db = await createBenchDb('sqlite', 'tftp-serve', '');
  const port = await freeUdpPort();
  const server = await startServer({
    db,
    env: { MUSTER_TFTP_LISTEN: `127.0.0.1:${port}`, MUSTER_TFTP_RATE: '0', MUSTER_TFTP_MAX_PER_CLIENT: '1000', ...env },
  });
  const token = await adminToken(server, db);
  const upload = await fetch(`${server.base}/api/v1/artifacts?name=${fileName}&publish=${fileName}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: readFileSync(join(dir, fileName)),
  });
  if (!upload.ok) throw new Error(`the artifact upload answered ${upload.status}: ${(await upload.text()).slice(0, 300)}`);
  const { pid } = server;
  return {
    name: 'muster',
    port,
    pid,
    cpuSeconds: () => procCpuSeconds(pid),
    stop: async () => {
      await server.stop();
      await db.dispose();
    },
  };
}

export async function startMusterTftp(dir: string): Promise<ServedTftp> {
  const script = join(root, 'bench/tftp-server.ts');
  const tracked = spawnTracked(nodeBin, [script, '--root', dir, '--port', '0', '--max-per-client', '1000', '--request-rate', 'off']);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`muster's TFTP server did not start: ${tracked.output().trim().slice(-800)}`)), 15_000);
    let line = '';
    tracked.child.stdout?.on('data', (chunk: Buffer) => {
      line += chunk.toString('utf8');
      const match = /\{"port":(\d+)\}/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    tracked.child.once('exit', () => reject(new Error(`muster's TFTP server exited: ${tracked.output().trim().slice(-800)}`)));
  });
  await waitAnswering('muster', port, tracked);
  const pid = tracked.child.pid as number;
  return { name: 'muster', port, pid, cpuSeconds: () => procCpuSeconds(pid), stop: tracked.stop };
}

export async function startTftpdHpa(dir: string): Promise<ServedTftp> {
  const port = await freeUdpPort();
  const tracked = spawnTracked('/usr/sbin/in.tftpd', ['--foreground', '--listen', '--address', `127.0.0.1:${port}`, '--secure', dir]);
  const pid = tracked.child.pid as number;
  const cpuSeconds = forkingCpu(pid);
  await waitAnswering('tftpd-hpa', port, tracked);
  return { name: 'tftpd-hpa', port, pid, cpuSeconds, stop: tracked.stop };
}

/** dnsmasq 2.90 serves TFTP on port 69 only, so it runs as root and the port must be free. */
export async function startDnsmasq(dir: string, work: string): Promise<ServedTftp> {
  try {
    (await udpSocket('127.0.0.1', 69)).close();
  } catch (error) {
    throw new Error(`dnsmasq serves TFTP on port 69 only, and 127.0.0.1:69 cannot be bound: ${oneLine(error)}`);
  }
  const tracked = spawnTracked('/usr/sbin/dnsmasq', [
    '--keep-in-foreground',
    '--port=0',
    '--enable-tftp',
    `--tftp-root=${dir}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--conf-file=/dev/null',
    `--pid-file=${join(work, 'dnsmasq.pid')}`,
    `--log-facility=${join(work, 'dnsmasq.log')}`,
    '--user=root',
  ]);
  await waitAnswering('dnsmasq', 69, tracked);
  const pid = tracked.child.pid as number;
  return { name: 'dnsmasq', port: 69, pid, cpuSeconds: () => procCpuSeconds(pid), stop: tracked.stop };
}

// ---------------------------------------------------------------------------------------------
// Clients

interface ClientsRun {
  seconds: number;
  /** MB/s (10^6 bytes) of the bytes fetched whole. */
  mbps: number;
  failures: number;
  failure?: string;
  /** Server CPU seconds during the run. */
  serverCpu: number;
}

/** curl clients are spread over source addresses 127.0.0.2–101, as a boot storm comes from many machines. */
function clientAddress(i: number): string {
  return `127.0.0.${2 + (i % 100)}`;
}

function clientArgs(kind: 'curl' | 'atftp', i: number, port: number, blksize: number, windowsize: number, out: string): [string, string[]] {
  if (kind === 'curl') {
    const url = `tftp://127.0.0.1:${port}/${fileName}`;
    return [
      'curl',
      [
        '-s',
        '-o',
        out,
        '-w',
        '%{size_download}',
        '--interface',
        clientAddress(i),
        '--tftp-blksize',
        String(blksize),
        '--max-time',
        String(runTimeoutS),
        url,
      ],
    ];
  }
  return [
    'atftp',
    ['--option', `windowsize ${windowsize}`, '--option', `blksize ${blksize}`, '-g', '-r', fileName, '-l', out, '127.0.0.1', String(port)],
  ];
}

/** Runs `count` clients at once and times them from the first spawn to the last exit; every client is bounded. */
async function runClients(
  server: ServedTftp,
  kind: 'curl' | 'atftp',
  count: number,
  blksize: number,
  windowsize: number,
  fileBytes: number,
  out = '/dev/null',
): Promise<ClientsRun> {
  const cpuBefore = server.cpuSeconds();
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const [command, args] = clientArgs(kind, i, server.port, blksize, windowsize, out);
      return new Promise<{ ok: boolean; detail: string }>((resolve) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
        });
        child.stderr.on('data', (chunk: Buffer) => {
          stderr = (stderr + chunk.toString('utf8')).slice(-500);
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), (runTimeoutS + 5) * 1000);
        child.on('error', (error) => resolve({ ok: false, detail: error.message }));
        // 'close', not 'exit': the output may still be in the pipe when the process has exited.
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const sizeOk = kind === 'atftp' || Number(stdout.trim()) === fileBytes;
          const ok = code === 0 && sizeOk && !/error|timeout|abort/i.test(kind === 'atftp' ? stderr : '');
          resolve({
            ok,
            detail: `${command} exited ${code ?? signal}${kind === 'curl' ? `, ${stdout.trim() || 0} bytes` : ''} ${stderr.trim()}`.trim(),
          });
        });
      });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = server.cpuSeconds() - cpuBefore;
  const failed = results.filter((r) => !r.ok);
  const fetched = (count - failed.length) * fileBytes;
  return { seconds, mbps: fetched / 1e6 / seconds, failures: failed.length, failure: failed[0]?.detail, serverCpu };
}

/** One client writes the file out; its bytes must be the served ones (a fast wrong answer must not count). */
async function verify(server: ServedTftp, kind: 'curl' | 'atftp', windowsize: number, content: Buffer, work: string): Promise<void> {
  const out = join(work, `verify-${server.name}-${kind}-${windowsize}.bin`);
  const run = await runClients(server, kind, 1, 1468, windowsize, content.length, out);
  if (run.failures > 0) throw new Error(`${server.name} (${kind}): ${run.failure}`);
  const got = createHash('sha256').update(readFileSync(out)).digest('hex');
  if (got !== createHash('sha256').update(content).digest('hex')) throw new Error(`${server.name} (${kind}) served different bytes`);
}

// ---------------------------------------------------------------------------------------------
// Memory with 1,000 transfers in flight

/**
 * 1,000 raw UDP clients (40 per source address) ask for the file with blksize 1468 and acknowledge one block every
 * 250 ms, so every transfer stays open with its read-ahead buffers; the server's VmRSS is sampled meanwhile.
 */
async function rssWithTransfers(server: ServedTftp, holdMs: number): Promise<{ peakMiB: number; idleMiB: number; open: number }> {
  const idleMiB = procMemoryMiB(server.pid);
  const sockets: dgram.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  const opened = new Set<number>();
  try {
    for (let i = 0; i < rssTransfers; i++) {
      const socket = await udpSocket(`127.0.1.${1 + Math.floor(i / 40)}`);
      socket.on('error', () => {});
      sockets.push(socket);
      let acked = -1;
      let from = 0;
      const request = rrq(fileName, { blksize: '1468', tsize: '0' });
      socket.on('message', (message, remote) => {
        const op = message.readUInt16BE(0);
        if (op !== 3 && op !== 6) return;
        opened.add(i);
        from = remote.port;
        if (op === 6) acked = 0;
        else if (acked < 0) acked = message.readUInt16BE(2);
      });
      // Slow clients: one ACK every 250 ms for the last block (or the OACK) seen; like real clients they ask again
      // while unanswered (a burst of 1,000 requests overflows the listener's receive buffer).
      timers.push(
        setInterval(() => {
          if (!opened.has(i)) socket.send(request, server.port, '127.0.0.1');
          else if (acked >= 0 && from) socket.send(ackPacket(acked), from, '127.0.0.1');
          acked = -1;
        }, 250),
      );
      socket.send(request, server.port, '127.0.0.1');
    }
    let peakMiB = 0;
    const deadline = performance.now() + holdMs;
    while (performance.now() < deadline) {
      await sleep(250);
      peakMiB = Math.max(peakMiB, procMemoryMiB(server.pid));
    }
    return { peakMiB, idleMiB, open: opened.size };
  } finally {
    for (const timer of timers) clearInterval(timer);
    for (const socket of sockets) socket.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

interface Cell {
  clients: number;
  blksize: number;
  /** MB/s of each run, by server ('muster ws8' and 'muster ws16' are atftp with windowsize 8 and 16). */
  mbps: Map<string, number[]>;
  cpu: Map<string, number[]>;
  failures: Map<string, string[]>;
}

function record(cell: Cell, label: string, run: ClientsRun): void {
  const push = <T>(map: Map<string, T[]>, value: T) => map.set(label, [...(map.get(label) ?? []), value]);
  push(cell.mbps, run.mbps);
  // CPU seconds per GiB served, so that cells of different sizes compare.
  push(cell.cpu, run.serverCpu / ((run.mbps * run.seconds * 1e6) / 2 ** 30 || Number.NaN));
  if (run.failures > 0) push(cell.failures, `${run.failures} of ${cell.clients} failed (${run.failure})`);
}

const fmt = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));

function cellFigures(cell: Cell, kind: DbKind, dnsmasqBest: number): Figure[] {
  const label = `curl ×${cell.clients}, blksize ${cell.blksize}`;
  const figures: Figure[] = [];
  const medians = new Map([...cell.mbps].map(([name, values]) => [name, median(values)]));
  const note = (name: string) => {
    const runs = cell.mbps.get(name) ?? [];
    const cpu = median(cell.cpu.get(name) ?? []);
    const failures = cell.failures.get(name);
    const stopped =
      failures && failures.length >= 2 && runs.length < (cell.mbps.get('muster')?.length ?? 0)
        ? ', no more runs after two with failures'
        : '';
    return `runs ${runs.map(fmt).join(', ')} MB/s; server CPU ${cpu.toFixed(2)} s/GiB${failures ? `; ${failures.join('; ')}${stopped}` : ''}`;
  };
  for (const name of peerNames)
    figures.push(figure(bench, kind, `${label}: ${name}`, medians.get(name) ?? Number.NaN, 'MB/s', undefined, note(name)));
  const bestPeer = Math.max(...peerNames.map((n) => medians.get(n) ?? 0));
  const muster = medians.get('muster') ?? Number.NaN;
  // Paired: muster against the faster peer of the same run, then the median of those ratios.
  const paired = median((cell.mbps.get('muster') ?? []).map((m, i) => m / Math.max(...peerNames.map((n) => cell.mbps.get(n)?.[i] ?? 0))));
  figures.push(
    figure(
      bench,
      kind,
      `${label}: muster`,
      muster,
      'MB/s',
      { op: '>=', value: Number(bestPeer.toFixed(1)) },
      `muster/best peer ${(muster / bestPeer).toFixed(2)} (paired runs: ${paired.toFixed(2)}); ${note('muster')}`,
    ),
  );
  for (const windowsize of [8, 16]) {
    const name = `muster ws${windowsize}`;
    if (!cell.mbps.has(name)) continue;
    const value = medians.get(name) ?? Number.NaN;
    const target = windowsize === 16 ? { op: '>=' as const, value: Number((windowFactor * dnsmasqBest).toFixed(1)) } : undefined;
    const against =
      windowsize === 16
        ? `${(value / dnsmasqBest).toFixed(2)}× dnsmasq's best (${fmt(dnsmasqBest)} MB/s at ${cell.clients} clients)`
        : `${(value / bestPeer).toFixed(2)}× the best peer with curl`;
    figures.push(
      figure(
        bench,
        kind,
        `atftp ×${cell.clients}, blksize ${cell.blksize}, windowsize ${windowsize}: muster`,
        value,
        'MB/s',
        target,
        `${against}; ${note(name)}`,
      ),
    );
  }
  return figures;
}

export async function benchTftp(kind: DbKind, options: TftpBenchOptions = {}): Promise<Figure[]> {
  const runs = options.runs ?? 5;
  const clientCounts = options.clients ?? [1, 8, 32, 128];
  const blksizes = options.blksizes ?? [512, 1468];
  const fileBytes = Math.round((options.fileMiB ?? 8) * 2 ** 20);
  const budgetMs = (options.budgetS ?? 2400) * 1000;
  const began = performance.now();
  const figures: Figure[] = [];
  const work = tempDir('tftp');
  const dir = join(work, 'root');
  const content = randomBytes(fileBytes);
  const servers: ServedTftp[] = [];
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, fileName), content);
    const muster = options.muster === 'standalone' ? await startMusterTftp(dir) : await startMusterServe(dir);
    log(`tftp: muster is ${options.muster === 'standalone' ? 'the standalone TFTP server (bench/tftp-server.ts)' : 'muster serve'}`);
    servers.push(muster, await startTftpdHpa(dir), await startDnsmasq(dir, work));
    const byName = new Map(servers.map((s) => [s.name, s]));
    log(`tftp: muster on :${byName.get('muster')?.port}, tftpd-hpa on :${byName.get('tftpd-hpa')?.port}, dnsmasq on :69`);
    for (const server of servers) await verify(server, 'curl', 0, content, work);
    for (const windowsize of [8, 16]) await verify(byName.get('muster') as ServedTftp, 'atftp', windowsize, content, work);

    const cells: Cell[] = [];
    for (const clients of options.skipThroughput ? [] : clientCounts) {
      for (const blksize of blksizes) {
        const cell: Cell = { clients, blksize, mbps: new Map(), cpu: new Map(), failures: new Map() };
        // Each run asks every server in turn, the order rotating, so that drift in the machine's speed hits all alike.
        const order: [string, () => Promise<ClientsRun>][] = servers.map((s) => [
          s.name,
          () => runClients(s, 'curl', clients, blksize, 0, fileBytes),
        ]);
        if (blksize === 1468) {
          const muster = byName.get('muster') as ServedTftp;
          for (const windowsize of [8, 16])
            order.push([`muster ws${windowsize}`, () => runClients(muster, 'atftp', clients, blksize, windowsize, fileBytes)]);
        }
        for (let run = 0; run < runs && performance.now() - began < budgetMs; run++) {
          for (let k = 0; k < order.length; k++) {
            const [label, go] = order[(k + run) % order.length];
            // A server that failed clients in two runs is past its own limit (dnsmasq's 50 transfers): each such
            // run lasts until the clients give up, and more of them would not change the figure.
            if ((cell.failures.get(label)?.length ?? 0) >= 2) continue;
            record(cell, label, await go());
          }
        }
        const line = [...cell.mbps].map(([name, values]) => `${name} ${fmt(median(values))}`).join(', ');
        log(`tftp: ${clients} clients, blksize ${blksize}: ${line} MB/s (medians of ${cell.mbps.get('muster')?.length ?? 0})`);
        cells.push(cell);
      }
    }
    for (const cell of cells) {
      const dnsmasqBest = Math.max(...cells.filter((c) => c.clients === cell.clients).map((c) => median(c.mbps.get('dnsmasq') ?? [])));
      if ((cell.mbps.get('muster')?.length ?? 0) === 0) {
        figures.push(
          failed(bench, kind, `curl ×${cell.clients}, blksize ${cell.blksize}: muster`, 'MB/s', undefined, 'no run within the time budget'),
        );
        continue;
      }
      figures.push(...cellFigures(cell, kind, dnsmasqBest));
    }

    if (!options.skipRss) {
      for (const server of servers) if (server.name !== 'muster') await server.stop();
      let muster = byName.get('muster') as ServedTftp;
      if (options.muster !== 'standalone') {
        // Clients this slow would be told to come back later (docs/tftp.md, Storms) and hold nothing: the worst case
        // is a server that keeps them all, as one with the file limit off does.
        const index = servers.indexOf(muster);
        await muster.stop();
        muster = await startMusterServe(dir, { MUSTER_TFTP_FILE_LIMIT: '0' });
        servers[index] = muster;
      }
      const { peakMiB, idleMiB, open } = await rssWithTransfers(muster, 8000);
      const note = `${open} of ${rssTransfers} transfers answered; RSS ${idleMiB.toFixed(0)} MiB before; blksize 1468, clients acknowledging a block every 250 ms`;
      log(`tftp: RSS with ${open} transfers in flight: ${peakMiB.toFixed(0)} MiB`);
      figures.push(
        open === rssTransfers
          ? figure(
              bench,
              kind,
              `muster RSS with ${rssTransfers} transfers in flight`,
              peakMiB,
              'MiB',
              { op: '<', value: rssTargetMiB },
              note,
            )
          : failed(bench, kind, `muster RSS with ${rssTransfers} transfers in flight`, 'MiB', { op: '<', value: rssTargetMiB }, note),
      );
    }
  } catch (error) {
    log(`tftp: ${error instanceof Error ? error.message : String(error)}`);
    figures.push(failed(bench, kind, 'throughput', 'MB/s', undefined, error));
  } finally {
    for (const server of servers) await server.stop();
  }
  return figures;
}

let ran = false;

/** For bench/run.ts, which calls each benchmark once per database: TFTP has none, so it runs in the first pass only. */
export async function benchTftpOnce(kind: DbKind, options: TftpBenchOptions = {}): Promise<Figure[]> {
  if (ran) return [];
  ran = true;
  return benchTftp(kind, options);
}

function list(raw: string | undefined, name: string): number[] | undefined {
  if (raw === undefined) return undefined;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--${name} ${raw}: expected whole numbers separated by commas`);
  return values;
}

if (import.meta.main) {
  await runMain('tftp', async () => {
    const { values } = parseArgs({
      options: {
        runs: { type: 'string' },
        clients: { type: 'string' },
        blksizes: { type: 'string' },
        'file-mib': { type: 'string' },
        'skip-rss': { type: 'boolean', default: false },
        'skip-throughput': { type: 'boolean', default: false },
        muster: { type: 'string', default: 'serve' },
      },
      strict: true,
    });
    return benchTftp('sqlite', {
      runs: list(values.runs, 'runs')?.[0],
      clients: list(values.clients, 'clients'),
      blksizes: list(values.blksizes, 'blksizes'),
      fileMiB: values['file-mib'] === undefined ? undefined : Number(values['file-mib']),
      skipRss: values['skip-rss'],
      skipThroughput: values['skip-throughput'],
      muster: values.muster === 'standalone' ? 'standalone' : 'serve',
    });
  });
}
