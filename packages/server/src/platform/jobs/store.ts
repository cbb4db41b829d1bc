import type { Job, JobState } from '@muster/contract';
import { type Kysely, sql } from 'kysely';
import { newId, now } from '../crypto/ids.ts';
import type { Dialect } from '../db/connect.ts';
import { decodeCursor } from '../db/page.ts';
import type { Database, JobRow } from '../db/schema.ts';
import type { Tx } from '../db/transact.ts';

export const jobChannel = 'muster_jobs';

export interface NewJob {
  type: string;
  machineId?: string | null;
  payload?: Record<string, unknown>;
  maxAttempts?: number;
  createdBy: string;
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    type: row.type,
    state: row.state as JobState,
    machine_id: row.machine_id,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    run_at: row.run_at,
    error: row.error,
    created_by: row.created_by,
    created_at: row.created_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}

/** Queues a job in the caller's transaction; runners on every replica wake when it commits. */
export async function enqueueJob(tx: Tx, dialect: Dialect, job: NewJob): Promise<JobRow> {
  const time = now();
  const row: JobRow = {
    id: newId('j'),
    type: job.type,
    state: 'queued',
    machine_id: job.machineId ?? null,
    payload: JSON.stringify(job.payload ?? {}),
    attempts: 0,
    max_attempts: job.maxAttempts ?? 1,
    run_at: time,
    locked_by: null,
    locked_until: null,
    error: null,
    log: '',
    created_by: job.createdBy,
    created_at: time,
    started_at: null,
    finished_at: null,
    updated_at: time,
  };
  await tx.db.insertInto('jobs').values(row).execute();
  if (dialect === 'postgres') await sql`select pg_notify(${jobChannel}, ${row.id})`.execute(tx.db);
  await tx.emit({ type: 'job.queued', machineId: row.machine_id, actor: job.createdBy, data: { job_id: row.id, job_type: row.type } });
  return row;
}

/** Takes the next due job for this runner; SKIP LOCKED lets replicas claim side by side on PostgreSQL. */
export async function claimJob(db: Kysely<Database>, dialect: Dialect, runnerId: string, leaseMs: number): Promise<JobRow | undefined> {
  const time = now();
  const until = new Date(Date.now() + leaseMs).toISOString();
  const lock = dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const { rows } = await sql<JobRow>`
    update jobs set state = 'running', locked_by = ${runnerId}, locked_until = ${until}, attempts = attempts + 1,
      started_at = coalesce(started_at, ${time}), updated_at = ${time}
    where id = (select id from jobs where state = 'queued' and run_at <= ${time} order by run_at, id limit 1 ${lock})
    returning *`.execute(db);
  return rows[0];
}

export async function extendLease(db: Kysely<Database>, id: string, runnerId: string, leaseMs: number): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({ locked_until: new Date(Date.now() + leaseMs).toISOString() })
    .where('id', '=', id)
    .where('locked_by', '=', runnerId)
    .where('state', '=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Requeues running jobs whose runner stopped renewing its lease (it crashed or was killed). */
export async function requeueAbandoned(db: Kysely<Database>, all = false): Promise<number> {
  const time = now();
  let query = db
    .updateTable('jobs')
    .set({ state: 'queued', locked_by: null, locked_until: null, run_at: time, updated_at: time })
    .where('state', '=', 'running');
  if (!all) query = query.where('locked_until', '<', time);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function finishJob(tx: Tx, id: string, runnerId: string, changes: Partial<JobRow>): Promise<boolean> {
  const result = await tx.db
    .updateTable('jobs')
    .set({ ...changes, locked_by: null, locked_until: null, updated_at: now() })
    .where('id', '=', id)
    .where('locked_by', '=', runnerId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function nextRunAt(db: Kysely<Database>): Promise<string | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.min('run_at').as('next'))
    .where('state', '=', 'queued')
    .executeTakeFirst();
  return (row?.next as string | null) ?? undefined;
}

/** Writes a running job's log, while this runner still holds it. */
export async function saveJobLog(db: Kysely<Database>, id: string, runnerId: string, log: string): Promise<void> {
  await db.updateTable('jobs').set({ log }).where('id', '=', id).where('locked_by', '=', runnerId).execute();
}

export function findJobRow(db: Kysely<Database>, id: string) {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Jobs newest first, after a cursor, filtered by state, type and machine. */
export function jobRows(
  db: Kysely<Database>,
  filter: { state?: JobState; type?: string; machineId?: string; cursor?: string },
  limit: number,
) {
  let q = db
    .selectFrom('jobs')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.type) q = q.where('type', '=', filter.type);
  if (filter.machineId) q = q.where('machine_id', '=', filter.machineId);
  if (filter.cursor) q = q.where('id', '<', String(decodeCursor(filter.cursor, 1)[0]));
  return q.execute();
}

export async function countJobsByState(db: Kysely<Database>): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('jobs')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('state')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

/** Cancels a job that is still queued; false when it is not. */
export async function cancelQueuedJob(db: Kysely<Database>, id: string, at: string): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({ state: 'cancelled', finished_at: at })
    .where('id', '=', id)
    .where('state', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
