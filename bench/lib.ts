// Shared helpers of the benchmarks: the server's process, PostgreSQL schemas, CPU and memory sampling, figures.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import pg from 'pg';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The server runs on the project's Node 24, spawned directly so that the child's PID is the server's. */
export const nodeBin = existsSync(join(root, 'node_modules/.bin/node')) ? join(root, 'node_modules/.bin/node') : process.execPath;
// The server runs compiled, as `npm start` and the installed package run it: dist/ is built here first.
// MUSTER_BENCH_ENTRY=source runs the TypeScript source instead.
const fromSource = process.env.MUSTER_BENCH_ENTRY === 'source';
if (!fromSource) execFileSync(nodeBin, [join(root, 'scripts', 'build.ts'), '--quiet'], { cwd: root, stdio: 'inherit' });
export const cliMain = join(root, fromSource ? 'packages/cli/src/main.ts' : 'dist/muster.js');
export const defaultPgUrl = 'postgres://postgres@127.0.0.1:5432/test';

export type DbKind = 'sqlite' | 'postgres';

// ---------------------------------------------------------------------------------------------
// Figures

export interface Target {
  op: '>=' | '<';
  value: number;
}

export type Verdict = 'PASS' | 'SHORT' | 'INFO' | 'ERROR';

export interface Figure {
  bench: string;
  db: DbKind;
  metric: string;
  value: number | null;
  unit: string;
  target?: Target;
  verdict: Verdict;
  note?: string;
}

export function figure(
  bench: string,
  db: DbKind,
  metric: string,
  value: number | null,
  unit: string,
  target?: Target,
  note?: string,
): Figure {
  let verdict: Verdict = 'INFO';
  if (value === null || Number.isNaN(value)) verdict = 'ERROR';
  else if (target) verdict = (target.op === '>=' ? value >= target.value : value < target.value) ? 'PASS' : 'SHORT';
  return { bench, db, metric, value, unit, target, verdict, note };
}

/** A figure that could not be measured. */
export function failed(bench: string, db: DbKind, metric: string, unit: string, target: Target | undefined, error: unknown): Figure {
  return { bench, db, metric, value: null, unit, target, verdict: 'ERROR', note: oneLine(error) };
}

export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatValue(value: number | null, unit: string): string {
  if (value === null) return '—';
  return unit ? `${formatNumber(value)} ${unit}` : formatNumber(value);
}

export function formatTarget(target: Target | undefined, unit: string): string {
  if (!target) return '';
  return `${target.op === '>=' ? '≥' : '<'} ${formatValue(target.value, unit)}`;
}

const columns = ['bench', 'db', 'metric', 'value', 'target', 'verdict', 'note'] as const;

function rows(figures: Figure[]): string[][] {
  return figures.map((f) => [
    f.bench,
    f.db,
    f.metric,
    formatValue(f.value, f.unit),
    formatTarget(f.target, f.unit),
    f.verdict,
    f.note ?? '',
  ]);
}

/** A plain-text table for the terminal. */
export function textTable(figures: Figure[]): string {
  const body = rows(figures);
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((r) => (i === 6 ? 0 : r[i].length))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 6 ? cell : i === 3 || i === 4 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w, i) => (i === 6 ? '----' : '-'.repeat(w)))), ...body.map(line)].join('\n');
}

/** The same table in Markdown. */
export function markdownTable(figures: Figure[]): string {
  const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|');
  const head = `| ${columns.join(' | ')} |\n| ${columns.map((_, i) => (i === 3 || i === 4 ? '---:' : '---')).join(' | ')} |`;
  return [head, ...rows(figures).map((r) => `| ${r.map(escapeCell).join(' | ')} |`)].join('\n');
}

/** What the machine is, for the results. */
export function machineDescription(): string {
  const cpus = os.cpus();
  const model = cpus[0] ? `${cpus[0].model.replace(/\s+/g, ' ').trim()}${cpus[0].speed ? ` @ ${cpus[0].speed} MHz` : ''}` : 'unknown CPU';
  const memory = (os.totalmem() / 1024 ** 3).toFixed(1);
  return `${cpus.length} × ${model}, ${memory} GiB RAM, ${os.type()} ${os.release()} (${os.arch()}), Node ${process.versions.node}`;
}

// ---------------------------------------------------------------------------------------------
// Command line

export interface CommonArgs {
  dbs: DbKind[];
  pgUrl: string;
  values: Record<string, string | boolean | undefined>;
}

/** Parses `--db sqlite|postgres|both` and `--pg-url URL` plus a benchmark's own options. */
export function parseCommon(extra: ParseArgsOptionsConfig = {}): CommonArgs {
  const { values } = parseArgs({
    options: { db: { type: 'string', default: 'sqlite' }, 'pg-url': { type: 'string' }, ...extra },
    strict: true,
  });
  const db = String(values.db);
  const dbs: DbKind[] = db === 'both' ? ['sqlite', 'postgres'] : db === 'postgres' || db === 'pg' ? ['postgres'] : ['sqlite'];
  if (!['sqlite', 'postgres', 'pg', 'both'].includes(db)) throw new Error(`--db ${db}: expected sqlite, postgres or both`);
  const pgUrl = (values['pg-url'] as string | undefined) ?? process.env.MUSTER_BENCH_PG ?? defaultPgUrl;
  return { dbs, pgUrl, values: values as Record<string, string | boolean | undefined> };
}

export function numberOption(values: Record<string, string | boolean | undefined>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} ${String(raw)}: expected a positive number`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every process and schema a benchmark makes is registered here and undone at exit.

const children = new Set<ChildProcess>();
const cleanups = new Set<() => Promise<void> | void>();

export function onCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function cleanupAll(): Promise<void> {
  for (const child of children) killChild(child, 'SIGKILL');
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      await fn();
    } catch (error) {
      console.error(`cleanup: ${oneLine(error)}`);
    }
  }
}

function killChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, signal);
    } catch {}
  }
}

let handlersInstalled = false;
let interrupted = false;

/** True once Ctrl-C (or SIGTERM) arrived: the run is being torn down and its figures mean nothing. */
export const wasInterrupted = () => interrupted;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const child of children) killChild(child, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: stopping the servers and dropping the schemas`);
      const timer = setTimeout(() => process.exit(130), 5000);
      timer.unref();
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

/** Cores busy on the whole machine over a short window: other work running beside the benchmark skews it. */
export async function machineBusyCores(ms = 1000): Promise<number> {
  const before = machineBusySeconds();
  await sleep(ms);
  return (machineBusySeconds() - before) / (ms / 1000);
}

export interface RunContext {
  /** Cores the machine had busy in the second before the benchmarks started. */
  busyBefore: number;
}

/** Runs a benchmark as a program: prints its figures and undoes everything it made. */
export async function runMain(name: string, body: (context: RunContext) => Promise<Figure[]>): Promise<void> {
  installHandlers();
  let figures: Figure[] = [];
  try {
    const busyBefore = await machineBusyCores();
    log(
      busyBefore > 0.25
        ? `warning: the machine is not idle (${busyBefore.toFixed(2)} of ${os.cpus().length} cores busy before the run); figures will be lower`
        : `machine idle before the run (${busyBefore.toFixed(2)} cores busy)`,
    );
    figures = await body({ busyBefore });
  } catch (error) {
    console.error(`${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanupAll();
  }
  if (figures.length && !interrupted) {
    console.log(`\n${textTable(figures)}`);
    if (figures.some((f) => f.verdict === 'ERROR')) process.exitCode = 1;
  }
}

export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

export function tempDir(label: string): string {
  const dir = mkdtempSync(join(os.tmpdir(), `muster-bench-${label}-`));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one fresh schema per run

export async function pgReachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return oneLine(error);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface PgSchema {
  schema: string;
  /** The base URL with `options=-c search_path=<schema>`. */
  url: string;
  drop(): Promise<void>;
}

export function withSearchPath(baseUrl: string, schema: string): string {
  return `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

export async function createPgSchema(baseUrl: string, label: string): Promise<PgSchema> {
  const schema = `bench_${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`create schema ${schema}`);
  } finally {
    await client.end();
  }
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    unregister();
    const c = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      await c.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await c.end();
    }
  };
  const unregister = onCleanup(drop);
  return { schema, url: withSearchPath(baseUrl, schema), drop };
}

/** A database for one run: a fresh data dir, and on PostgreSQL a fresh schema. */
export interface BenchDb {
  kind: DbKind;
  dataDir: string;
  /** DATABASE_URL for PostgreSQL; undefined on SQLite. */
  url?: string;
  schema?: string;
  sqlitePath: string;
  dispose(): Promise<void>;
}

export async function createBenchDb(kind: DbKind, label: string, pgUrl: string): Promise<BenchDb> {
  const dataDir = tempDir(`${label}-${kind}`);
  const sqlitePath = join(dataDir, 'muster.db');
  if (kind === 'sqlite') {
    return { kind, dataDir, sqlitePath, dispose: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const schema = await createPgSchema(pgUrl, label);
  return {
    kind,
    dataDir,
    sqlitePath,
    url: schema.url,
    schema: schema.schema,
    dispose: async () => {
      await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The server's process

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function serverEnv(url: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The load comes from one address and creates new machines as fast as it can: the limits meant for floods are off.
    MUSTER_ENROLL_RATE: '0',
    MUSTER_DISCOVERY_RATE: '0',
    MUSTER_LOG_LEVEL: 'warn',
    MUSTER_TFTP_LISTEN: 'off',
    ...extra,
  };
  for (const name of [
    'DATABASE_URL',
    'MUSTER_DATABASE_URL',
    'DB_DRIVER',
    'DB_DSN',
    'MUSTER_CONFIG',
    'MUSTER_DATA_DIR',
    'LISTEN_ADDR',
    'MUSTER_LISTEN',
  ]) {
    delete env[name];
  }
  if (url) env.DATABASE_URL = url;
  return env;
}

export interface Server {
  pid: number;
  port: number;
  base: string;
  /** Milliseconds from spawn() to the first 200 from /readyz. */
  readyMs: number;
  /** CPU milliseconds (all threads) the server had used by then. */
  readyCpuMs: number;
  output(): string;
  stop(): Promise<void>;
}

function collect(child: ChildProcess): () => string {
  let tail = '';
  const add = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => tail;
}

function probe(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Resolves true when the child has exited, false when it is still running after `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface StartOptions {
  db: BenchDb;
  readyTimeoutMs?: number;
  env?: Record<string, string>;
}

/** Spawns `node packages/cli/src/main.ts serve` and waits for /readyz to answer 200. */
export async function startServer(options: StartOptions): Promise<Server> {
  installHandlers();
  if (!existsSync(cliMain)) throw new Error(`${cliMain} does not exist yet: the server cannot be started`);
  const port = await freePort();
  const args = [cliMain, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', options.db.dataDir];
  const started = performance.now();
  const child = spawn(nodeBin, args, { cwd: root, env: serverEnv(options.db.url, options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
    children.delete(child);
  });
  const output = collect(child);
  const stop = async () => {
    if (!children.has(child)) return;
    killChild(child, 'SIGTERM');
    if (!(await waitExit(child, 5000))) {
      killChild(child, 'SIGKILL');
      await waitExit(child, 2000);
    }
    children.delete(child);
  };
  const deadline = started + (options.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (spawnError) throw new Error(`cannot start ${nodeBin}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}) before it was ready: ${output().trim().slice(-1500)}`);
    }
    if ((await probe(port, '/readyz')) === 200) break;
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`the server was not ready within ${options.readyTimeoutMs ?? 20_000} ms: ${output().trim().slice(-1500)}`);
    }
    await sleep(5);
  }
  const readyMs = performance.now() - started;
  if (child.pid === undefined) throw new Error('the server has no PID');
  const readyCpuMs = procCpuSeconds(child.pid) * 1000;
  return { pid: child.pid, port, base: `http://127.0.0.1:${port}`, readyMs, readyCpuMs, output, stop };
}

/** Runs the CLI to completion (for `user create`). */
export function runCli(args: string[], db: BenchDb, stdin?: string, timeoutMs = 20_000): Promise<string> {
  installHandlers();
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBin, [cliMain, ...args], {
      cwd: root,
      env: serverEnv(db.url),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    const output = collect(child);
    const timer = setTimeout(() => killChild(child, 'SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(output());
      else reject(new Error(`muster ${args.slice(0, 2).join(' ')} exited ${code ?? signal}: ${output().trim().slice(-1000)}`));
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin ?? '');
  });
}

export const adminPassword = 'bench-admin-password-1';

/** Creates the first admin with the CLI and logs in: returns the bearer token. */
export async function adminToken(server: Server, db: BenchDb): Promise<string> {
  await runCli(['user', 'create', 'admin', '--role', 'admin', '--password-stdin', '--data-dir', db.dataDir], db, `${adminPassword}\n`);
  const res = await request(server.base, 'POST', '/api/v1/login', { body: { username: 'admin', password: adminPassword } });
  if (res.status !== 200) throw new Error(`login answered ${res.status}: ${res.text.slice(0, 300)}`);
  const token = (JSON.parse(res.text) as { token?: string }).token;
  if (!token) throw new Error(`login answered no token: ${res.text.slice(0, 300)}`);
  return token;
}

// ---------------------------------------------------------------------------------------------
// HTTP: one keep-alive connection for sequential requests

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export interface Response {
  status: number;
  text: string;
  ms: number;
}

export function request(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; timeoutMs?: number } = {},
): Promise<Response> {
  const url = new URL(path, base);
  if (url.hostname !== '127.0.0.1') throw new Error(`benchmarks only send traffic to 127.0.0.1, not ${url.hostname}`);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent, timeout: options.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// ---------------------------------------------------------------------------------------------
// /proc: CPU time and memory of the server, the generator (this process) and the machine

const clockTicks = 100; // sysconf(_SC_CLK_TCK) on Linux

/** utime + stime in seconds of a process (all threads), or of one thread. */
export function procCpuSeconds(pid: number, tid?: number): number {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + (steal || 0)) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Starts a window over the whole machine; the function it returns gives the cores busy on average since. */
export function machineWindow(): () => number {
  const wall = performance.now();
  const busy = machineBusySeconds();
  return () => (machineBusySeconds() - busy) / ((performance.now() - wall) / 1000);
}

/** CPU seconds of every PostgreSQL process on the machine (backends, parallel workers, walwriter…). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      if (stat.slice(open + 1, close) !== 'postgres') continue;
      const fields = stat.slice(close + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / clockTicks;
    } catch {}
  }
  return total;
}

/** VmRSS (or another field such as VmHWM) of a process, in MiB. */
export function procMemoryMiB(pid: number, field = 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface CpuUse {
  seconds: number;
  /** Cores in use on average: CPU seconds / wall seconds. */
  server: number;
  serverMainThread: number;
  generator: number;
  /** PostgreSQL's processes (any on the machine: other users of the same cluster count too). */
  postgres: number;
  /** Everything else on the machine. */
  other: number;
  machine: number;
  cores: number;
}

let maxOther = 0;

/** The most CPU that other work on the machine used during any one measurement so far, in cores. */
export const otherLoadSeen = () => maxOther;

/** Waits, at most `maxMs`, for the machine to be idle (< 0.25 core busy over a second); returns the last reading. */
export async function waitQuiet(maxMs: number): Promise<number> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const busy = await machineBusyCores(1000);
    if (busy < 0.25 || performance.now() >= deadline) return busy;
  }
}

/** Starts a measurement window; the function it returns ends it. */
export function cpuWindow(serverPid: number, dbKind: DbKind): () => CpuUse {
  const wall = performance.now();
  const server = procCpuSeconds(serverPid);
  const main = procCpuSeconds(serverPid, serverPid);
  const self = process.cpuUsage();
  const busy = machineBusySeconds();
  const postgres = dbKind === 'postgres' ? postgresCpuSeconds() : 0;
  return () => {
    const seconds = (performance.now() - wall) / 1000;
    const selfDelta = process.cpuUsage(self);
    const cores = os.cpus().length;
    const use = {
      seconds,
      server: (procCpuSeconds(serverPid) - server) / seconds,
      serverMainThread: (procCpuSeconds(serverPid, serverPid) - main) / seconds,
      generator: (selfDelta.user + selfDelta.system) / 1e6 / seconds,
      postgres: dbKind === 'postgres' ? (postgresCpuSeconds() - postgres) / seconds : 0,
      machine: (machineBusySeconds() - busy) / seconds,
      other: 0,
      cores,
    };
    use.other = Math.max(0, use.machine - use.server - use.generator - use.postgres);
    maxOther = Math.max(maxOther, use.other);
    return use;
  };
}

/**
 * Says which side limited a measurement, from the CPU each used. A Node thread that is busy 85 % of the wall time is
 * saturated for practical purposes (the rest is event-loop turns and waits it cannot overlap).
 */
export function diagnose(use: CpuUse, dbKind: DbKind): string {
  const pgPart = dbKind === 'postgres' ? `, PostgreSQL ${use.postgres.toFixed(2)}` : '';
  const parts = `CPU in cores: server ${use.server.toFixed(2)} (main thread ${use.serverMainThread.toFixed(2)}), generator ${use.generator.toFixed(2)}${pgPart}, other ${use.other.toFixed(2)}, machine ${use.machine.toFixed(2)}/${use.cores}`;
  if (use.serverMainThread >= 0.85) return `server-bound: its main thread is saturated (${parts})`;
  if (use.generator >= 0.85) return `generator-bound: the load generator is saturated (${parts})`;
  if (use.machine >= use.cores * 0.85) return `machine CPU saturated: the processes share ${use.cores} cores (${parts})`;
  if (use.postgres >= 0.75 && use.postgres > use.server) return `PostgreSQL-bound: its processes did most of the work (${parts})`;
  return `no CPU saturated, so waits (I/O, locks, round trips) limit it (${parts})`;
}
