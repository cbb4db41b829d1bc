// Raspberry Pi boot storms: simulated Pi 4s playing the real bootloader sequence (blksize 1468 then 1024, tsize,
// the aborted start4.elf probe, a 30 s timeout per file) against `muster serve` (a Pi tree added through the API,
// every serial unseen) and against tftpd-hpa (a directory per serial) in the same run.
// Alone: node bench/pi-storm.ts [--db sqlite|postgres|both] [--runs 3] [--kernel-mb 8] [--storm-count 1000] [--storm-seconds 60]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { type PiStormSummary, runPiStorm } from '@muster/sim/pi-storm.ts';
import { sampleFiles, writeSampleTree } from '@muster/sim/pi-tree.ts';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure, median } from './lib/figures.ts';
import { procMemoryMiB } from './lib/proc.ts';
import { log, runPerDatabase, tempDir } from './lib/run.ts';
import { adminToken, freePort, runCli, startServer } from './lib/server.ts';
import { startTftpdHpa } from './tftp.ts';

export interface PiStormBenchOptions {
  pgUrl: string;
  runs?: number;
  kernelBytes?: number;
  stormCount?: number;
  stormSeconds?: number;
}

export const rssTargetMiB = 250;

interface Contender {
  name: 'muster' | 'tftpd-hpa';
  port: number;
  pid: number;
}

/** Boots one storm and samples the server's memory meanwhile. */
async function storm(server: Contender, count: number, arrivalSeconds: number, serialStart: number) {
  let peakMiB = 0;
  const sampler = setInterval(() => {
    peakMiB = Math.max(peakMiB, procMemoryMiB(server.pid));
  }, 250);
  try {
    const summary = await runPiStorm({ host: '127.0.0.1', port: server.port, count, model: 'pi4', arrivalSeconds, serialStart });
    return { summary, peakMiB };
  } finally {
    clearInterval(sampler);
  }
}

function describe(name: string, s: PiStormSummary, peakMiB: number): string {
  const failures = s.failures.slice(0, 3).map((f) => `${f.serial}/${f.file}: ${f.error}`);
  return `${name}: ${s.succeeded}/${s.count} booted, first packet answered ${s.firstPacketAnswered}, boot ms median ${s.bootMs.median} p95 ${s.bootMs.p95} max ${s.bootMs.max}, ${(s.bytes / 1e6).toFixed(0)} MB in ${(s.elapsedMs / 1000).toFixed(1)} s, server RSS peak ${peakMiB.toFixed(0)} MiB${failures.length ? `; e.g. ${failures.join('; ')}` : ''}`;
}

export async function benchPiStorm(kind: DbKind, options: PiStormBenchOptions): Promise<Figure[]> {
  const runs = options.runs ?? 3;
  const kernelBytes = options.kernelBytes ?? 8_000_000;
  const stormCount = options.stormCount ?? 1000;
  const stormSeconds = options.stormSeconds ?? 60;
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
    const muster: Contender = { name: 'muster', port: tftpPort, pid: server.pid };

    // tftpd-hpa: the same files, one directory (a symlink) per serial it will be asked for.
    const peerRoot = join(work, 'peer');
    mkdirSync(peerRoot);
    const peerSerials = piSerials('pi4', 0x7e000000, 100 * runs + stormCount).map((s) => s.serial);
    writeSampleTree(peerRoot, { model: 'pi4', serials: peerSerials, kernelBytes, initramfsBytes: 1_500_000 });
    const tftpd = await startTftpdHpa(peerRoot);
    stops.push(tftpd.stop);
    const peer: Contender = { name: 'tftpd-hpa', port: tftpd.port, pid: tftpd.pid };

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
  await runPerDatabase('pi-storm', ['runs', 'kernel-mb', 'storm-count', 'storm-seconds'], (kind, { pgUrl, number }) =>
    benchPiStorm(kind, {
      pgUrl,
      runs: number('runs', 3),
      kernelBytes: number('kernel-mb', 8) * 1_000_000,
      stormCount: number('storm-count', 1000),
      stormSeconds: number('storm-seconds', 60),
    }),
  );
}
