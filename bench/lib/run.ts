// Running a benchmark as a program: its command line, the cleanup of everything it made, and its figures printed.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { defaultPgUrl } from './database.ts';
import { type DbKind, type Figure, oneLine, textTable } from './figures.ts';
import { machineBusySeconds } from './proc.ts';

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

// Cleanup: every process and schema a benchmark makes is registered here and undone at exit.

/** Every child process a benchmark starts: killed at exit whatever happens. */
export const children = new Set<ChildProcess>();
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

export function killChild(child: ChildProcess, signal: NodeJS.Signals): void {
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

export function installHandlers(): void {
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

export interface DatabaseRun {
  pgUrl: string;
  /** A numeric option of the command line (a positive number), or its fallback. */
  number: (option: string, fallback: number) => number;
}

/** Runs a benchmark as a program once per database that --db names, with its own numeric options. */
export function runPerDatabase(
  name: string,
  options: string[],
  bench: (kind: DbKind, run: DatabaseRun) => Promise<Figure[]>,
): Promise<void> {
  return runMain(name, async () => {
    const args = parseCommon(Object.fromEntries(options.map((option) => [option, { type: 'string' as const }])));
    const figures: Figure[] = [];
    for (const kind of args.dbs) {
      figures.push(
        ...(await bench(kind, { pgUrl: args.pgUrl, number: (option, fallback) => numberOption(args.values, option, fallback) })),
      );
    }
    return figures;
  });
}
