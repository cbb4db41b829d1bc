// `muster serve` and the CLI as users run them, and HTTP to the server.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import type { BenchDb } from './database.ts';
import { procCpuSeconds } from './proc.ts';
import { children, installHandlers, killChild, sleep } from './run.ts';

export const root = join(import.meta.dirname, '..', '..');
/** The server runs on the project's Node 24, spawned directly so that the child's PID is the server's. */
export const nodeBin = existsSync(join(root, 'node_modules/.bin/node')) ? join(root, 'node_modules/.bin/node') : process.execPath;
// The server runs compiled, as `npm start` and the installed package run it: dist/ is built here first.
// MUSTER_BENCH_ENTRY=source runs the TypeScript source instead.
const fromSource = process.env.MUSTER_BENCH_ENTRY === 'source';
if (!fromSource) execFileSync(nodeBin, [join(root, 'scripts', 'build.ts'), '--quiet'], { cwd: root, stdio: 'inherit' });
export const cliMain = join(root, fromSource ? 'packages/cli/src/main.ts' : 'dist/muster.js');

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

/** The environment a benchmarked server runs with: flood limits off, quiet, no TFTP, the given database. */
export function serverEnv(url: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
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
