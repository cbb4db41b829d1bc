// Listing machines: seed 100,000 machines straight into the tables, then time 500 sequential requests of each query.
// Alone: node bench/list.ts --db sqlite|postgres|both [--machines 100000] [--requests 500] [--query-seconds 12]
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { machineStates } from '@muster/contract';
import pg from 'pg';
import { hardwareFacts, macFor, serviceTagFor } from './enroll.ts';
import { type BenchDb, createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure, percentile } from './lib/figures.ts';
import { cpuWindow, diagnose } from './lib/proc.ts';
import { log, runPerDatabase } from './lib/run.ts';
import { adminToken, request, startServer } from './lib/server.ts';

export interface ListOptions {
  pgUrl: string;
  machines?: number;
  requests?: number;
  /** Time bound of each query's loop. */
  querySeconds?: number;
}

export const listP99TargetMs = 30;

export const states = machineStates;
const racks = 40;
const serialPrefix = 'SV';
const macRun = 0x5e;

// ---------------------------------------------------------------------------------------------
// Seed rows

const crockford = '0123456789abcdefghjkmnpqrstvwxyz';

/** A lower-case ULID for a time: 10 characters of milliseconds, 16 random. */
export function ulidAt(ms: number): string {
  let time = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = crockford[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let random = '';
  for (let i = 0; i < 16; i++) random += crockford[bytes[i] & 31];
  return time + random;
}

export const rackOf = (i: number) => `r${String((i % racks) + 1).padStart(2, '0')}`;

interface SeedRow {
  id: string;
  state: string;
  hostname: string;
  serial: string;
  mac: string;
  facts: string;
  enrolledAt: string | null;
  lastSeenAt: string;
  createdAt: string;
  rack: string;
}

/** Machine i of the seed: states spread evenly over the 9, one per minute back from now, a rack label over 40 racks. */
function seedRow(i: number, base: number): SeedRow {
  const created = base + i * 60_000;
  const createdAt = new Date(created).toISOString();
  const state = states[i % states.length];
  const rack = rackOf(i);
  const serial = serviceTagFor(serialPrefix, i);
  const mac = macFor(macRun, i);
  return {
    id: `m_${ulidAt(created)}`,
    state,
    hostname: state === 'discovered' || state === 'enrolled' ? '' : `${rack}-n${String(i).padStart(6, '0')}.dc1.example.net`,
    serial,
    mac,
    facts: JSON.stringify(hardwareFacts(serial, mac, i)),
    enrolledAt: state === 'discovered' ? null : createdAt,
    lastSeenAt: new Date(created + 30_000).toISOString(),
    createdAt,
    rack,
  };
}

function seedSqlite(path: string, count: number, base: number): void {
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    const machine = db.prepare(
      `insert into machines (id, state, hostname, description, service_tag, mac_address, fleet_id, fleet_seq, facts, nixos_config,
         enrolled_at, last_seen_at, created_at, updated_at) values (?, ?, ?, '', ?, ?, null, null, ?, '', ?, ?, ?, ?)`,
    );
    const identifier = db.prepare('insert into identifiers (kind, value, machine_id, created_at) values (?, ?, ?, ?)');
    const label = db.prepare('insert into machine_labels (machine_id, key, value) values (?, ?, ?)');
    db.exec('begin');
    try {
      for (let i = 0; i < count; i++) {
        const r = seedRow(i, base);
        machine.run(r.id, r.state, r.hostname, r.serial, r.mac, r.facts, r.enrolledAt, r.lastSeenAt, r.createdAt, r.lastSeenAt);
        identifier.run('serial', r.serial, r.id, r.createdAt);
        identifier.run('mac', r.mac, r.id, r.createdAt);
        label.run(r.id, 'rack', r.rack);
      }
      db.exec('commit');
    } catch (error) {
      db.exec('rollback');
      throw error;
    }
  } finally {
    db.close();
  }
}

async function seedPostgres(url: string, count: number, base: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    const batch = 2000;
    for (let start = 0; start < count; start += batch) {
      const rows: SeedRow[] = [];
      for (let i = start; i < Math.min(count, start + batch); i++) rows.push(seedRow(i, base));
      const col = <K extends keyof SeedRow>(key: K) => rows.map((r) => r[key]);
      await client.query(
        `insert into machines (id, state, hostname, service_tag, mac_address, facts, enrolled_at, last_seen_at, created_at, updated_at)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
        [
          col('id'),
          col('state'),
          col('hostname'),
          col('serial'),
          col('mac'),
          col('facts'),
          col('enrolledAt'),
          col('lastSeenAt'),
          col('createdAt'),
          col('lastSeenAt'),
        ],
      );
      const ids = col('id');
      const created = col('createdAt');
      await client.query(
        `insert into identifiers (kind, value, machine_id, created_at)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[])`,
        [
          [...rows.map(() => 'serial'), ...rows.map(() => 'mac')],
          [...col('serial'), ...col('mac')],
          [...ids, ...ids],
          [...created, ...created],
        ],
      );
      await client.query(
        `insert into machine_labels (machine_id, key, value) select machine_id, 'rack', value from unnest($1::text[], $2::text[]) as t(machine_id, value)`,
        [ids, col('rack')],
      );
    }
    await client.query('commit');
    // Autovacuum would analyze the new rows within a minute; do it now so the planner sees a settled table.
    await client.query('analyze machines; analyze identifiers; analyze machine_labels');
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}

export async function seed(db: BenchDb, count: number): Promise<void> {
  const base = Date.now() - count * 60_000 - 3_600_000;
  if (db.kind === 'sqlite') seedSqlite(db.sqlitePath, count, base);
  else await seedPostgres(db.url ?? '', count, base);
}

// ---------------------------------------------------------------------------------------------
// Queries

interface Query {
  name: string;
  path: () => string;
}

interface Page {
  items: { id: string; state: string; labels?: Record<string, string> }[];
  next_cursor: string | null;
}

async function getPage(base: string, path: string, token: string): Promise<{ page: Page; ms: number }> {
  const res = await request(base, 'GET', path, { token });
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.text.slice(0, 300)}`);
  return { page: JSON.parse(res.text) as Page, ms: res.ms };
}

/** Checks that each query returns what it asks for, so that a fast wrong answer does not pass. */
function check(name: string, page: Page, expectState?: string, expectRack?: string): void {
  if (page.items.length === 0) throw new Error(`${name} returned no machines`);
  for (const item of page.items) {
    if (expectState && item.state !== expectState) throw new Error(`${name} returned a machine in state ${item.state}`);
    if (expectRack && item.labels?.rack !== expectRack) throw new Error(`${name} returned a machine of rack ${item.labels?.rack}`);
  }
}

export async function benchList(kind: DbKind, options: ListOptions): Promise<Figure[]> {
  const count = options.machines ?? 100_000;
  const requests = options.requests ?? 500;
  const querySeconds = options.querySeconds ?? 12;
  const name = 'list';
  const figures: Figure[] = [];
  try {
    const db = await createBenchDb(kind, 'list', options.pgUrl);
    try {
      const server = await startServer({ db });
      try {
        const token = await adminToken(server, db);
        log(`list/${kind}: seeding ${count.toLocaleString('en-US')} machines`);
        const seedStart = performance.now();
        await seed(db, count);
        const seedS = (performance.now() - seedStart) / 1000;
        log(`list/${kind}: seeded in ${seedS.toFixed(1)} s`);
        figures.push(figure(name, kind, `seed ${count.toLocaleString('en-US')} machines (SQL)`, seedS, 's'));

        const first = await getPage(server.base, '/api/v1/machines?state=enrolled&limit=50', token);
        check('state=enrolled', first.page, 'enrolled');
        const cursor = first.page.next_cursor;
        if (!cursor) throw new Error('state=enrolled&limit=50 gave no next_cursor');
        let pick = 0;
        const partialSerial = () => {
          // A different machine each time; 4 characters from the middle of its service tag.
          pick = (pick + 7919) % count;
          return serviceTagFor(serialPrefix, pick).slice(2, 6);
        };
        const queries: (Query & { state?: string; rack?: string })[] = [
          { name: 'state=enrolled', path: () => '/api/v1/machines?state=enrolled&limit=50', state: 'enrolled' },
          { name: 'label=rack=r07', path: () => '/api/v1/machines?label=rack%3Dr07&limit=50', rack: 'r07' },
          { name: 'state=ready&sort=hostname', path: () => '/api/v1/machines?state=ready&sort=hostname&limit=50', state: 'ready' },
          {
            name: 'state=enrolled, page 2 (cursor)',
            path: () => `/api/v1/machines?state=enrolled&limit=50&cursor=${encodeURIComponent(cursor)}`,
            state: 'enrolled',
          },
          { name: 'q=<partial serial>', path: () => `/api/v1/machines?q=${encodeURIComponent(partialSerial())}&limit=50` },
        ];
        for (const query of queries) {
          try {
            const warm = await getPage(server.base, query.path(), token);
            check(query.name, warm.page, query.state, query.rack);
            for (let i = 0; i < 4; i++) await getPage(server.base, query.path(), token);
            const latencies: number[] = [];
            const window = cpuWindow(server.pid, kind);
            const deadline = performance.now() + querySeconds * 1000;
            while (latencies.length < requests && performance.now() < deadline) {
              latencies.push((await getPage(server.base, query.path(), token)).ms);
            }
            const cpu = window();
            latencies.sort((a, b) => a - b);
            const p99 = percentile(latencies, 99);
            const bounded =
              latencies.length < requests
                ? `only ${latencies.length} of ${requests} requests within ${querySeconds} s; `
                : `${latencies.length} requests; `;
            log(
              `list/${kind}: ${query.name}: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${latencies.length} requests)`,
            );
            figures.push(figure(name, kind, `${query.name} p50`, percentile(latencies, 50), 'ms'));
            figures.push(
              figure(
                name,
                kind,
                `${query.name} p99`,
                p99,
                'ms',
                { op: '<', value: listP99TargetMs },
                bounded +
                  (p99 >= listP99TargetMs
                    ? diagnose(cpu, kind)
                    : `CPU in cores: server main thread ${cpu.serverMainThread.toFixed(2)}${kind === 'postgres' ? `, PostgreSQL ${cpu.postgres.toFixed(2)}` : ''}`),
              ),
            );
          } catch (error) {
            log(`list/${kind}: ${query.name}: ${error instanceof Error ? error.message : String(error)}`);
            figures.push(failed(name, kind, `${query.name} p99`, 'ms', { op: '<', value: listP99TargetMs }, error));
          }
        }
      } finally {
        await server.stop();
      }
    } finally {
      await db.dispose();
    }
  } catch (error) {
    log(`list/${kind}: ${error instanceof Error ? error.message : String(error)}`);
    figures.push(failed(name, kind, 'list queries', 'ms', { op: '<', value: listP99TargetMs }, error));
  }
  return figures;
}

if (import.meta.main) {
  await runPerDatabase('list', ['machines', 'requests', 'query-seconds'], (kind, { pgUrl, number }) =>
    benchList(kind, {
      pgUrl,
      machines: number('machines', 100_000),
      requests: number('requests', 500),
      querySeconds: number('query-seconds', 12),
    }),
  );
}
