// Enrollment throughput: 64 connections POST /api/v1/enroll with unique machines for 10 s after a 2 s warm-up.
// Alone: node bench/enroll.ts --db sqlite|postgres|both [--duration 10] [--warmup 2] [--connections 64]
import autocannon, { type Result } from 'autocannon';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure } from './lib/figures.ts';
import { cpuWindow, diagnose, procMemoryMiB } from './lib/proc.ts';
import { log, runPerDatabase, sleep } from './lib/run.ts';
import { request, startServer } from './lib/server.ts';

export interface EnrollOptions {
  pgUrl: string;
  connections?: number;
  durationS?: number;
  warmupS?: number;
  /** Idle time after the load before the server's RSS is read again. */
  idleAfterS?: number;
}

export const enrollTargets: Record<DbKind, number> = { sqlite: 3000, postgres: 1500 };
export const rssTargetMiB = 120;

const hex2 = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

/** A MAC address from a run byte and a counter: locally administered (02:…), unique per counter. */
export function macFor(run: number, n: number): string {
  return ['02', hex2(run), hex2(n >>> 24), hex2(n >>> 16), hex2(n >>> 8), hex2(n)].join(':');
}

/** A seven-character Dell-style service tag: a run prefix and a base-36 counter. */
export function serviceTagFor(prefix: string, n: number): string {
  return `${prefix}${n.toString(36).toUpperCase().padStart(5, '0')}`;
}

const cpuModels = [
  'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz',
  'AMD EPYC 7543 32-Core Processor',
  'Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz',
];
const products = ['PowerEdge R650', 'PowerEdge R750', 'PowerEdge R6525'];

/** What a registration image reports: about 1 KB of JSON. */
export function hardwareFacts(serial: string, mac: string, n: number): Record<string, unknown> {
  const model = n % cpuModels.length;
  const secondMac = `${mac.slice(0, -2)}${hex2(Number.parseInt(mac.slice(-2), 16) ^ 0x80)}`;
  return {
    system: {
      manufacturer: 'Dell Inc.',
      product: products[model],
      serial,
      bios: { vendor: 'Dell Inc.', version: '1.13.2', date: '2024-03-07' },
    },
    cpu: {
      model: cpuModels[model],
      sockets: 2,
      cores: 64,
      threads: 128,
      mhz: 2000 + model * 200,
      flags: ['avx2', 'avx512f', 'aes', 'sse4_2', 'vmx'],
    },
    memory: {
      total_bytes: 549755813888,
      dimms: ['A1', 'A2', 'B1', 'B2'].map((slot) => ({ slot, size_gb: 128, type: 'DDR4', speed_mts: 3200, manufacturer: 'Samsung' })),
    },
    disks: [
      {
        name: 'nvme0n1',
        model: 'Dell Ent NVMe P5600 MU U.2 1.6TB',
        serial: `PHAB${serial}0A`,
        size_bytes: 1600321314816,
        rotational: false,
      },
      {
        name: 'nvme1n1',
        model: 'Dell Ent NVMe P5600 MU U.2 1.6TB',
        serial: `PHAB${serial}0B`,
        size_bytes: 1600321314816,
        rotational: false,
      },
      { name: 'sda', model: 'BOSS-N1', serial: `BS${serial}`, size_bytes: 480103981056, rotational: false },
    ],
    nics: [
      { name: 'eno12399np0', mac, driver: 'bnxt_en', speed_mbps: 25000, link: true },
      { name: 'eno12409np1', mac: secondMac, driver: 'bnxt_en', speed_mbps: 25000, link: false },
    ],
    os: { kernel: '6.6.32', image: 'muster-register 1.4.0' },
  };
}

/** Bodies with a fresh service tag and MAC each time, unique within a run. */
export function enrollBodies(): () => string {
  const run = Math.floor(Math.random() * 256);
  const letters = 'BCDFGHJKLMNPQRSTVWXZ';
  const prefix = `${letters[Math.floor(Math.random() * letters.length)]}${letters[Math.floor(Math.random() * letters.length)]}`;
  let n = 0;
  return () => {
    n += 1;
    const service_tag = serviceTagFor(prefix, n);
    const mac_address = macFor(run, n);
    return JSON.stringify({ service_tag, mac_address, hardware: hardwareFacts(service_tag, mac_address, n) });
  };
}

function load(base: string, nextBody: () => string, connections: number, durationS: number): Promise<Result> {
  return autocannon({
    url: base,
    connections,
    duration: durationS,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/enroll',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          req.body = nextBody();
          return req;
        },
      },
    ],
  });
}

function statusSummary(result: Result): string {
  const codes = Object.entries(result.statusCodeStats)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, { count }]) => `${code}×${count}`);
  if (result.errors) codes.push(`connection errors×${result.errors} (timeouts ${result.timeouts})`);
  return codes.join(', ');
}

export async function benchEnroll(kind: DbKind, options: EnrollOptions): Promise<Figure[]> {
  const connections = options.connections ?? 64;
  const durationS = options.durationS ?? 10;
  const warmupS = options.warmupS ?? 2;
  const idleAfterS = options.idleAfterS ?? 3;
  const target = enrollTargets[kind];
  const name = 'enroll';
  try {
    const db = await createBenchDb(kind, 'enroll', options.pgUrl);
    try {
      const server = await startServer({ db });
      try {
        log(`enroll/${kind}: server ${server.pid} ready in ${server.readyMs.toFixed(0)} ms`);
        const nextBody = enrollBodies();
        const probe = await request(server.base, 'POST', '/api/v1/enroll', { body: JSON.parse(nextBody()) });
        if (probe.status !== 201) throw new Error(`a first enrollment answered ${probe.status}, not 201: ${probe.text.slice(0, 300)}`);
        log(`enroll/${kind}: ${warmupS} s warm-up, then ${durationS} s with ${connections} connections`);
        await load(server.base, nextBody, connections, warmupS);
        const window = cpuWindow(server.pid, kind);
        const result = await load(server.base, nextBody, connections, durationS);
        const cpu = window();
        const peak = procMemoryMiB(server.pid, 'VmHWM');
        await sleep(idleAfterS * 1000);
        const rssAfter = procMemoryMiB(server.pid);
        const ok = result['2xx'];
        const rate = ok / result.duration;
        const bad = result.non2xx + result.errors;
        log(`enroll/${kind}: ${ok} created in ${result.duration.toFixed(1)} s, ${bad} not 2xx`);
        return [
          figure(name, kind, 'enrollments/s (2xx)', rate, '/s', { op: '>=', value: target }, diagnose(cpu, kind)),
          figure(name, kind, 'enroll latency p50', result.latency.p50, 'ms'),
          figure(name, kind, 'enroll latency p99', result.latency.p99, 'ms'),
          figure(name, kind, 'enroll non-2xx + errors', bad, '', { op: '<', value: 1 }, statusSummary(result) || undefined),
          figure(name, kind, 'server peak RSS (VmHWM) under load', peak, 'MiB'),
          figure(name, kind, `server RSS after load + ${idleAfterS} s idle`, rssAfter, 'MiB', { op: '<', value: rssTargetMiB }),
        ];
      } finally {
        await server.stop();
      }
    } finally {
      await db.dispose();
    }
  } catch (error) {
    log(`enroll/${kind}: ${error instanceof Error ? error.message : String(error)}`);
    return [failed(name, kind, 'enrollments/s (2xx)', '/s', { op: '>=', value: target }, error)];
  }
}

if (import.meta.main) {
  await runPerDatabase('enroll', ['duration', 'warmup', 'connections'], (kind, { pgUrl, number }) =>
    benchEnroll(kind, { pgUrl, durationS: number('duration', 10), warmupS: number('warmup', 2), connections: number('connections', 64) }),
  );
}
