// Enrollment throughput of several checkouts side by side, as issue 17 measured it: wrk with 64 connections against
// `muster serve` on SQLite with the limits off, one fresh server and data dir per run, the checkouts taking turns
// (the order rotating) so that a change in the machine's speed hits them alike.
//   node bench/enroll-ab.ts --runs 5 old=/tmp/muster-409a7c7 base=/tmp/muster-29076d4 new=.
// Each checkout runs from its TypeScript source (older commits have no build) with its own node_modules.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { procCpuSeconds } from './lib/proc.ts';
import { children, installHandlers, killChild, log, numberOption, sleep } from './lib/run.ts';
import { serverEnv, waitExit } from './lib/server.ts';

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const runs = numberOption(values, 'runs', 5);
const durationS = numberOption(values, 'duration', 10);
const warmupS = numberOption(values, 'warmup', 2);
const connections = numberOption(values, 'connections', 64);
const checkouts = positionals.map((spec) => {
  const at = spec.indexOf('=');
  if (at <= 0) throw new Error(`${spec}: expected LABEL=DIRECTORY`);
  return { label: spec.slice(0, at), dir: resolve(spec.slice(at + 1)) };
});
if (checkouts.length === 0) throw new Error('name at least one LABEL=DIRECTORY');

const script = join(import.meta.dirname, 'enroll.lua');
const nodeBin = process.execPath;

// lib/server.ts builds this checkout's dist/ when imported; these runs need none of it.
function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolvePromise(port));
    });
  });
}

async function readyWithin(base: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const status = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (reply) => reply.status,
      () => 0,
    );
    if (status === 200) return true;
    await sleep(200);
  }
  return false;
}

interface Wrk {
  perSecond: number;
  requests: number;
  bad: number;
}

/** Runs wrk (Debian's `wrk` package) and reads its summary; `run` makes this load's machines unique. */
function wrk(base: string, seconds: number, run: number): Promise<Wrk> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, base, '--', String(run)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', reject);
    const timer = setTimeout(() => killChild(child, 'SIGKILL'), (seconds + 30) * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const bad =
        Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+) timeout/.exec(out)?.[1] ?? 0);
      if (code !== 0 || !Number.isFinite(perSecond)) reject(new Error(`wrk exited with ${code}: ${out.slice(-500)}`));
      else resolvePromise({ perSecond, requests, bad });
    });
  });
}

interface Measured extends Wrk {
  cpuUsPerRequest: number;
}

async function measure(dir: string, run: number): Promise<Measured> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'muster-enroll-ab-'));
  const port = await freePort();
  const env = serverEnv(undefined);
  const args = ['packages/cli/src/main.ts', 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
  const server = spawn(nodeBin, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  children.add(server);
  server.on('error', (error) => log(`server in ${dir}: ${error.message}`));
  try {
    const base = `http://127.0.0.1:${port}`;
    if (!(await readyWithin(base, 30_000))) throw new Error(`the server in ${dir} was not ready within 30 s: ${stderr}`);
    await wrk(base, warmupS, run);
    const pid = server.pid as number;
    const cpuBefore = procCpuSeconds(pid);
    const result = await wrk(base, durationS, (run + 1) % 256);
    const cpu = procCpuSeconds(pid) - cpuBefore;
    return { ...result, cpuUsPerRequest: (cpu * 1e6) / result.requests };
  } finally {
    killChild(server, 'SIGTERM');
    if (!(await waitExit(server, 10_000))) killChild(server, 'SIGKILL');
    children.delete(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

installHandlers();
const results = new Map(checkouts.map((c) => [c.label, [] as Measured[]]));
let run = Math.floor(Math.random() * 128) * 2;
for (let round = 0; round < runs; round++) {
  for (let i = 0; i < checkouts.length; i++) {
    const { label, dir } = checkouts[(i + round) % checkouts.length];
    run = (run + 2) % 256;
    const measured = await measure(dir, run);
    results.get(label)?.push(measured);
    log(
      `run ${round + 1} ${label}: ${measured.perSecond.toFixed(0)}/s, ${measured.cpuUsPerRequest.toFixed(0)} µs CPU a request, ${measured.bad} bad`,
    );
    await sleep(500);
  }
}
for (const [label, measured] of results) {
  const rates = measured.map((m) => m.perSecond);
  console.log(
    `${label}: median ${median(rates).toFixed(0)}/s (min ${Math.min(...rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)}); ` +
      `runs ${rates.map((r) => r.toFixed(0)).join(', ')}; server CPU a request ${median(measured.map((m) => m.cpuUsPerRequest)).toFixed(0)} µs (median); ` +
      `bad answers ${measured.reduce((sum, m) => sum + m.bad, 0)}`,
  );
}
