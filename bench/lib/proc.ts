import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { DbKind } from './figures.ts';
import { machineBusyCores } from './run.ts';

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

export function machineBusySeconds(): number {
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
