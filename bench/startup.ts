// Start to ready, and idle memory: spawn the server, time until /readyz answers 200, read its VmRSS after 5 s idle.
// Alone: node bench/startup.ts --db sqlite|postgres|both [--runs 5] [--idle 5]
import { spawn } from 'node:child_process';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure, median } from './lib/figures.ts';
import { machineWindow, procMemoryMiB } from './lib/proc.ts';
import { log, runPerDatabase, sleep } from './lib/run.ts';
import { nodeBin, type Server, startServer } from './lib/server.ts';

export interface StartupOptions {
  pgUrl: string;
  runs?: number;
  idleS?: number;
  /** Stop starting more runs after this long. */
  budgetS?: number;
}

export const readyTargetMs = 1500;
export const idleRssTargetMiB = 120;

/** How long a bare Node process takes to start and exit: the floor under the server's own start. */
function bareNodeMs(): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(nodeBin, ['-e', '0'], { stdio: 'ignore' });
    child.on('exit', () => resolve(performance.now() - started));
    child.on('error', () => resolve(Number.NaN));
  });
}

export async function benchStartup(kind: DbKind, options: StartupOptions): Promise<Figure[]> {
  const runs = options.runs ?? 5;
  const idleS = options.idleS ?? 5;
  const budgetMs = (options.budgetS ?? 28) * 1000;
  const began = performance.now();
  const name = 'startup';
  const readyTarget = { op: '<' as const, value: readyTargetMs };
  const figures: Figure[] = [];
  try {
    const floor = await bareNodeMs();
    const db = await createBenchDb(kind, 'startup', options.pgUrl);
    try {
      // First start on an empty data dir (and, on PostgreSQL, an empty schema): includes the migrations.
      let machine = machineWindow();
      const fresh = await startServer({ db });
      const freshBusy = machine();
      await fresh.stop();
      log(`startup/${kind}: first start ready in ${fresh.readyMs.toFixed(0)} ms`);
      figures.push(
        figure(
          name,
          kind,
          'ready, first start (migrates)',
          fresh.readyMs,
          'ms',
          readyTarget,
          `server CPU until ready ${fresh.readyCpuMs.toFixed(0)} ms; machine ${freshBusy.toFixed(2)} cores busy meanwhile; a bare \`node -e 0\` takes ${floor.toFixed(0)} ms`,
        ),
      );

      const times: number[] = [];
      const cpuTimes: number[] = [];
      const busy: number[] = [];
      let rss = Number.NaN;
      let rssAtReady = Number.NaN;
      for (let i = 0; i < runs; i++) {
        const last = i === runs - 1 || performance.now() - began > budgetMs - (idleS + 3) * 1000;
        let server: Server | undefined;
        try {
          machine = machineWindow();
          server = await startServer({ db });
          busy.push(machine());
          times.push(server.readyMs);
          cpuTimes.push(server.readyCpuMs);
          if (last) {
            rssAtReady = procMemoryMiB(server.pid);
            await sleep(idleS * 1000);
            rss = procMemoryMiB(server.pid);
          }
        } finally {
          await server?.stop();
        }
        if (last) break;
      }
      log(`startup/${kind}: migrated starts ${times.map((t) => t.toFixed(0)).join(', ')} ms; idle RSS ${rss.toFixed(1)} MiB`);
      figures.push(
        figure(
          name,
          kind,
          `ready, migrated data dir (median of ${times.length})`,
          median(times),
          'ms',
          readyTarget,
          `runs: ${times.map((t) => t.toFixed(0)).join(', ')} ms; server CPU until ready ${median(cpuTimes).toFixed(0)} ms (median); machine ${median(busy).toFixed(2)} cores busy meanwhile`,
        ),
      );
      figures.push(
        figure(
          name,
          kind,
          `idle RSS (ready + ${idleS} s)`,
          rss,
          'MiB',
          { op: '<', value: idleRssTargetMiB },
          `${rssAtReady.toFixed(1)} MiB at ready`,
        ),
      );
    } finally {
      await db.dispose();
    }
  } catch (error) {
    log(`startup/${kind}: ${error instanceof Error ? error.message : String(error)}`);
    figures.push(failed(name, kind, 'ready', 'ms', readyTarget, error));
  }
  return figures;
}

if (import.meta.main) {
  await runPerDatabase('startup', ['runs', 'idle'], (kind, { pgUrl, number }) =>
    benchStartup(kind, { pgUrl, runs: number('runs', 5), idleS: number('idle', 5) }),
  );
}
