// Raspberry Pi boot storms: simulated Pi 4s playing the real bootloader sequence (blksize 1468 then 1024, tsize,
// the aborted start4.elf probe, a 30 s timeout per file) against `muster serve` (a Pi tree added through the API,
// every serial unseen) and against tftpd-hpa (a directory per serial) in the same run.
// Then a sweep of storms at once (100, 150, 200, 400 Pis), each Pi restarting a failed boot as a Pi 4 does.
// Alone: node bench/pi-storm.ts [--db sqlite|postgres|both] [--runs 3] [--kernel-mb 8] [--storm-count 1000] [--storm-seconds 60]
//   [--sweep-max 400] [--sweep-seconds 300] [--sweep-only 1]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { type PiStormSummary, runPiStorm } from '@muster/sim/pi-storm.ts';
import { sampleFiles, writeSampleTree } from '@muster/sim/pi-tree.ts';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure, median } from './lib/figures.ts';
import { procCpuSeconds, procMemoryMiB } from './lib/proc.ts';
import { log, runPerDatabase, tempDir } from './lib/run.ts';
import { adminToken, freePort, runCli, startServer } from './lib/server.ts';
import { startTftpdHpa } from './tftp.ts';

export interface PiStormBenchOptions {
  pgUrl: string;
  runs?: number;
  kernelBytes?: number;
  stormCount?: number;
  stormSeconds?: number;
  /** The sweep's storms at once go up to this many Pis (below 100: no sweep). */
  sweepMax?: number;
  /** Only the sweep: leave out the paired 100-at-once runs and the spread storm. */
  sweepOnly?: boolean;
  /** Each storm of the sweep ends by then. */
  sweepSeconds?: number;
}

/** Pis powered on at once in the sweep: from where both servers boot them all to past where serving evenly fell. */
export const sweepCounts = [100, 150, 200, 400];
/** A Pi 4 whose boot failed is up again after about this long: next boot mode, restart, link, DHCP. */
export const restartDelayMs = 5000;

export const rssTargetMiB = 250;

interface Contender {
  name: 'muster' | 'tftpd-hpa';
  port: number;
  pid: number;
  /** CPU seconds so far (tftpd-hpa's with its forked children). */
  cpuSeconds(): number;
}

/** Boots one storm and samples the server's memory meanwhile; `cpu` is the server's CPU seconds during it. */
async function storm(
  server: Contender,
  count: number,
  arrivalSeconds: number,
  serialStart: number,
  more: { restartDelayMs?: number; deadlineSeconds?: number } = {},
) {
  let peakMiB = 0;
  const sampler = setInterval(() => {
    peakMiB = Math.max(peakMiB, procMemoryMiB(server.pid));
  }, 250);
  const cpuBefore = server.cpuSeconds();
  try {
    const summary = await runPiStorm({ host: '127.0.0.1', port: server.port, count, model: 'pi4', arrivalSeconds, serialStart, ...more });
    return { summary, peakMiB, cpu: server.cpuSeconds() - cpuBefore };
  } finally {
    clearInterval(sampler);
  }
}

function describe(name: string, s: PiStormSummary, peakMiB: number): string {
  const failures = s.failures.slice(0, 3).map((f) => `${f.serial}/${f.file}: ${f.error}`);
  return `${name}: ${s.succeeded}/${s.count} booted, first packet answered ${s.firstPacketAnswered}, boot ms median ${s.bootMs.median} p95 ${s.bootMs.p95} max ${s.bootMs.max}, ${(s.bytes / 1e6).toFixed(0)} MB in ${(s.elapsedMs / 1000).toFixed(1)} s, server RSS peak ${peakMiB.toFixed(0)} MiB${failures.length ? `; e.g. ${failures.join('; ')}` : ''}`;
}

/**
 * Storms at once of each size in `counts`, muster and tftpd-hpa serving the same bytes in turn (the order alternates),
 * every Pi restarting a failed boot after 5 s until the storm's time is up: booted, median and p95 boot, server CPU.
 * Targets (issue 20): at 200 all boot on muster with a median at most 1.5× tftpd-hpa's; at 400 all boot.
 */
async function stormSweep(kind: DbKind, muster: Contender, peer: Contender, counts: number[], seconds: number): Promise<Figure[]> {
  const figures: Figure[] = [];
  let offset = 0;
  for (const [index, count] of counts.entries()) {
    const results = {} as Record<Contender['name'], Awaited<ReturnType<typeof storm>>>;
    for (const contender of index % 2 === 0 ? [muster, peer] : [peer, muster]) {
      const start = (contender === muster ? 0x6d000000 : 0x7d000000) + offset;
      const result = await storm(contender, count, 0, start, { restartDelayMs, deadlineSeconds: seconds });
      results[contender.name] = result;
      const { summary } = result;
      log(
        `pi-storm sweep, ${count} at once with restarts, ${describe(contender.name, summary, result.peakMiB)}, ${summary.attempts} boot attempts, server CPU ${result.cpu.toFixed(1)} s`,
      );
    }
    offset += count;
    const m = results.muster.summary;
    const p = results['tftpd-hpa'].summary;
    const ratio = p.succeeded > 0 && m.succeeded > 0 ? m.bootMs.median / p.bootMs.median : null;
    const note = `muster ${m.succeeded}/${count} booted, median ${m.bootMs.median} ms, p95 ${m.bootMs.p95} ms, ${m.attempts} attempts, CPU ${results.muster.cpu.toFixed(1)} s; tftpd-hpa ${p.succeeded}/${count}, median ${p.bootMs.median} ms, p95 ${p.bootMs.p95} ms, ${p.attempts} attempts, CPU ${results['tftpd-hpa'].cpu.toFixed(1)} s`;
    const all = count >= 200 ? { op: '>=' as const, value: count } : undefined;
    figures.push(
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: booted (muster)`, m.succeeded, 'Pis', all, note),
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: booted (tftpd-hpa)`, p.succeeded, 'Pis'),
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: median boot (muster)`, m.bootMs.median, 'ms'),
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: median boot (tftpd-hpa)`, p.bootMs.median, 'ms'),
      figure(
        'pi-storm',
        kind,
        `${count} Pi 4 at once with restarts: median boot, muster / tftpd-hpa`,
        ratio,
        '×',
        count === 200 ? { op: '<', value: 1.5001 } : undefined,
      ),
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: server CPU (muster)`, results.muster.cpu, 's'),
      figure('pi-storm', kind, `${count} Pi 4 at once with restarts: server CPU (tftpd-hpa)`, results['tftpd-hpa'].cpu, 's'),
    );
  }
  return figures;
}

export async function benchPiStorm(kind: DbKind, options: PiStormBenchOptions): Promise<Figure[]> {
  const runs = options.sweepOnly ? 0 : (options.runs ?? 3);
  const kernelBytes = options.kernelBytes ?? 8_000_000;
  const stormCount = options.sweepOnly ? 0 : (options.stormCount ?? 1000);
  const stormSeconds = options.stormSeconds ?? 60;
  const sweep = sweepCounts.filter((count) => count <= (options.sweepMax ?? 400));
  const sweepSeconds = options.sweepSeconds ?? 300;
  const name = 'pi-storm';
  const figures: Figure[] = [];
  const stops: (() => Promise<void>)[] = [];
  try {
    const work = tempDir('pi-storm');
    const files = sampleFiles({ model: 'pi4', kernelBytes, initramfsBytes: 1_500_000 });
    const perBoot = Object.values(files).reduce((sum, f) => sum + f.length, 0);
    log(`pi-storm: a Pi 4 boot moves about ${(perBoot / 1e6).toFixed(1)} MB (start4.elf, kernel8.img, initramfs8, …)`);

    // muster: the real server, its TFTP door, a tree added through the CLI, every serial unseen.
    const db = await createBenchDb(kind, 'pi-storm', options.pgUrl);
    const tftpPort = await freePort();
    const server = await startServer({ db, env: { MUSTER_TFTP_LISTEN: `127.0.0.1:${tftpPort}` } });
    stops.push(server.stop, db.dispose);
    const token = await adminToken(server, db);
    const treeDir = join(work, 'tree');
    writeSampleTree(treeDir, { model: 'pi4', serials: [], kernelBytes, initramfsBytes: 1_500_000, directory: '.' });
    await runCli(
      ['--server', server.base, '--token', token, 'pi', 'tree', 'add', 'storm', treeDir, '--serial-pattern', '*'],
      db,
      undefined,
      120_000,
    );
    const muster: Contender = { name: 'muster', port: tftpPort, pid: server.pid, cpuSeconds: () => procCpuSeconds(server.pid) };

    // tftpd-hpa: the same files, one directory (a symlink) per serial it will be asked for.
    const peerRoot = join(work, 'peer');
    mkdirSync(peerRoot);
    const sweepTotal = sweep.reduce((sum, count) => sum + count, 0);
    const peerSerials = [
      ...piSerials('pi4', 0x7e000000, 100 * runs + stormCount),
      ...(sweepTotal > 0 ? piSerials('pi4', 0x7d000000, sweepTotal) : []),
    ].map((s) => s.serial);
    writeSampleTree(peerRoot, { model: 'pi4', serials: peerSerials, kernelBytes, initramfsBytes: 1_500_000 });
    const tftpd = await startTftpdHpa(peerRoot);
    stops.push(tftpd.stop);
    const peer: Contender = { name: 'tftpd-hpa', port: tftpd.port, pid: tftpd.pid, cpuSeconds: tftpd.cpuSeconds };

    figures.push(...(await stormSweep(kind, muster, peer, sweep, sweepSeconds)));

    // 100 at once, paired: the order alternates run by run; muster always meets serials it has never seen.
    const medians: Record<string, number[]> = { muster: [], 'tftpd-hpa': [] };
    let musterAllBooted = true;
    let musterAllFirst = true;
    for (let run = 0; run < runs; run++) {
      for (const contender of run % 2 === 0 ? [muster, peer] : [peer, muster]) {
        const start = (contender === muster ? 0x6e000000 : 0x7e000000) + run * 100;
        const { summary, peakMiB } = await storm(contender, 100, 0, start);
        log(`pi-storm run ${run + 1}, 100 at once, ${describe(contender.name, summary, peakMiB)}`);
        medians[contender.name].push(summary.succeeded === 100 ? summary.bootMs.median : Number.POSITIVE_INFINITY);
        if (contender === muster) {
          musterAllBooted &&= summary.succeeded === 100;
          musterAllFirst &&= summary.firstPacketAnswered === 100;
        }
      }
    }
    const musterMedian = median(medians.muster);
    const peerMedian = median(medians['tftpd-hpa']);
    if (runs > 0)
      figures.push(
        figure(name, kind, '100 Pi 4 at once: all boot (muster)', musterAllBooted ? 1 : 0, 'yes=1', { op: '>=', value: 1 }),
        figure(name, kind, '100 Pi 4 at once: median boot, muster', musterMedian, 'ms', { op: '<', value: peerMedian }),
        figure(name, kind, '100 Pi 4 at once: median boot, tftpd-hpa', peerMedian, 'ms'),
        figure(name, kind, '100 Pi 4 at once: unseen serial answered on its first packet', musterAllFirst ? 1 : 0, 'yes=1', {
          op: '>=',
          value: 1,
        }),
      );

    // Arrivals spread over a minute, as when a rack is powered on.
    if (stormCount === 0) return figures;
    const spread = await storm(muster, stormCount, stormSeconds, 0x6f000000);
    log(`pi-storm ${stormCount} over ${stormSeconds} s, ${describe('muster', spread.summary, spread.peakMiB)}`);
    const spreadPeer = await storm(peer, stormCount, stormSeconds, 0x7e000000 + 100 * runs);
    log(`pi-storm ${stormCount} over ${stormSeconds} s, ${describe('tftpd-hpa', spreadPeer.summary, spreadPeer.peakMiB)}`);
    figures.push(
      figure(name, kind, `${stormCount} Pi 4 over ${stormSeconds} s: booted (muster)`, spread.summary.succeeded, 'Pis', {
        op: '>=',
        value: stormCount,
      }),
      figure(name, kind, `${stormCount} Pi 4 over ${stormSeconds} s: booted (tftpd-hpa)`, spreadPeer.summary.succeeded, 'Pis'),
      figure(name, kind, `${stormCount} Pi 4 over ${stormSeconds} s: answered on first packet`, spread.summary.firstPacketAnswered, 'Pis', {
        op: '>=',
        value: stormCount,
      }),
      figure(name, kind, `${stormCount} Pi 4 over ${stormSeconds} s: median boot (muster)`, spread.summary.bootMs.median, 'ms'),
      figure(name, kind, 'server RSS peak during the storms', spread.peakMiB, 'MiB', { op: '<', value: rssTargetMiB }),
    );
  } catch (error) {
    figures.push(failed(name, kind, 'storm', '', undefined, error));
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
  return figures;
}

if (import.meta.main) {
  await runPerDatabase(
    'pi-storm',
    ['runs', 'kernel-mb', 'storm-count', 'storm-seconds', 'sweep-max', 'sweep-seconds', 'sweep-only'],
    (kind, { pgUrl, number }) =>
      benchPiStorm(kind, {
        pgUrl,
        runs: number('runs', 3),
        kernelBytes: number('kernel-mb', 8) * 1_000_000,
        stormCount: number('storm-count', 1000),
        stormSeconds: number('storm-seconds', 60),
        sweepMax: number('sweep-max', 400),
        sweepSeconds: number('sweep-seconds', 300),
        sweepOnly: number('sweep-only', 0) > 0,
      }),
  );
}
