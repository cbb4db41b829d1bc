import type { FastifyBaseLogger } from 'fastify';
import { now } from '../crypto/ids.ts';
import type { Db } from '../db/connect.ts';
import type { JobRow } from '../db/schema.ts';
import type { Transactor, Tx } from '../db/transact.ts';
import { claimJob, extendLease, finishJob, nextRunAt, requeueAbandoned, saveJobLog } from './store.ts';

export interface JobContext {
  log(line: string): void;
  signal: AbortSignal;
}

export interface JobHandler {
  run(job: JobRow, context: JobContext): Promise<void>;
  /** Domain changes when the job succeeds, in the transaction that marks it succeeded. */
  succeeded?(tx: Tx, job: JobRow): Promise<void>;
  /** Domain changes when the last attempt failed. */
  failed?(tx: Tx, job: JobRow, error: string): Promise<void>;
}

export interface RunnerOptions {
  db: Db;
  transactor: Transactor;
  handlers: Record<string, JobHandler>;
  runnerId: string;
  log: FastifyBaseLogger;
  concurrency?: number;
  leaseMs?: number;
  backoffBaseMs?: number;
  onFinished?: (type: string, result: 'succeeded' | 'retrying' | 'failed') => void;
}

const maxLogBytes = 256 * 1024;
const maxIdleMs = 30_000;

/** Exponential backoff with jitter: base·2^(attempt-1), at most ten minutes. */
export function backoffMs(attempt: number, baseMs: number): number {
  const delay = Math.min(baseMs * 2 ** (attempt - 1), 600_000);
  return Math.round(delay * (0.75 + Math.random() * 0.5));
}

/** Appends to a job log, keeping its tail when it outgrows the limit. */
export function appendLog(log: string, line: string): string {
  const next = `${log}${line.endsWith('\n') ? line : `${line}\n`}`;
  return next.length <= maxLogBytes ? next : `[… earlier output truncated …]\n${next.slice(next.length - maxLogBytes)}`;
}

export class JobRunner {
  readonly #o: Required<RunnerOptions>;
  readonly #running = new Map<string, AbortController>();
  readonly #done = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  #pumping = false;
  #again = false;

  constructor(options: RunnerOptions) {
    this.#o = { concurrency: 2, leaseMs: 60_000, backoffBaseMs: 5_000, onFinished: () => {}, ...options };
    this.#o.backoffBaseMs ??= 5_000;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // One SQLite file has one server, so at start every running job is abandoned; replicas wait for leases.
    const requeued = await requeueAbandoned(this.#o.db.kysely, this.#o.db.dialect === 'sqlite');
    if (requeued > 0) this.#o.log.info({ requeued }, 'requeued jobs whose runner stopped');
    this.wake();
  }

  /** Looks for due work now (after an enqueue, a notification or a timer). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#pump()
      .catch((error: Error) => this.#o.log.error({ err: error }, 'job runner could not claim work'))
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.wake();
        }
      });
  }

  async #pump(): Promise<void> {
    while (!this.#stopped && this.#running.size < this.#o.concurrency) {
      const job = await claimJob(this.#o.db.kysely, this.#o.db.dialect, this.#o.runnerId, this.#o.leaseMs);
      if (!job) break;
      const done = this.#execute(job).finally(() => {
        this.#done.delete(done);
        this.wake();
      });
      this.#done.add(done);
    }
    await this.#schedule();
  }

  async #schedule(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stopped) return;
    const next = await nextRunAt(this.#o.db.kysely);
    const wait = next ? Math.max(50, Math.min(Date.parse(next) - Date.now(), maxIdleMs)) : maxIdleMs;
    // Also the safety net for replicas and for leases that expire: an idle runner looks again after 30 s.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void requeueAbandoned(this.#o.db.kysely).then(
        () => this.wake(),
        () => this.wake(),
      );
    }, wait);
    this.#timer.unref();
  }

  async #execute(job: JobRow): Promise<void> {
    const { log, runnerId, leaseMs, transactor } = this.#o;
    const handler = this.#o.handlers[job.type];
    const controller = new AbortController();
    this.#running.set(job.id, controller);
    let output = job.log ? appendLog(job.log, `--- attempt ${job.attempts} at ${now()}`) : `--- attempt ${job.attempts} at ${now()}\n`;
    let dirty = true;
    const flush = async () => {
      if (!dirty) return;
      dirty = false;
      await saveJobLog(this.#o.db.kysely, job.id, runnerId, output);
    };
    const heartbeat = setInterval(
      () => {
        void flush().catch(() => {});
        void extendLease(this.#o.db.kysely, job.id, runnerId, leaseMs).then((held) => {
          if (!held) controller.abort(new Error('lost the lease on this job'));
        });
      },
      Math.min(1000, leaseMs / 3),
    );
    let failure: string | null = null;
    try {
      if (!handler) throw new Error(`no handler for job type ${job.type}`);
      await handler.run(job, {
        signal: controller.signal,
        log: (line) => {
          output = appendLog(output, line);
          dirty = true;
        },
      });
    } catch (error) {
      failure = (error as Error).message || String(error);
      output = appendLog(output, `error: ${failure}`);
    } finally {
      clearInterval(heartbeat);
      this.#running.delete(job.id);
    }
    const time = now();
    // A job cut short by a server stop is put back as it was, to run again on the next start.
    const interrupted = failure !== null && this.#stopped;
    const retry = failure !== null && job.attempts < job.max_attempts;
    try {
      await transactor.run(async (tx) => {
        if (interrupted) {
          await finishJob(tx, job.id, runnerId, { state: 'queued', log: output, attempts: job.attempts - 1, run_at: time });
        } else if (failure === null) {
          if (!(await finishJob(tx, job.id, runnerId, { state: 'succeeded', log: output, error: null, finished_at: time }))) return;
          await handler?.succeeded?.(tx, job);
          await tx.emit({
            type: 'job.succeeded',
            machineId: job.machine_id,
            actor: 'system',
            data: { job_id: job.id, job_type: job.type },
          });
        } else if (retry) {
          const runAt = new Date(Date.now() + backoffMs(job.attempts, this.#o.backoffBaseMs)).toISOString();
          if (!(await finishJob(tx, job.id, runnerId, { state: 'queued', log: output, error: failure, run_at: runAt }))) return;
          await tx.emit({
            type: 'job.retrying',
            machineId: job.machine_id,
            actor: 'system',
            reason: failure,
            data: { job_id: job.id, run_at: runAt, attempt: job.attempts },
          });
        } else {
          if (!(await finishJob(tx, job.id, runnerId, { state: 'failed', log: output, error: failure, finished_at: time }))) return;
          await handler?.failed?.(tx, job, failure ?? '');
          await tx.emit({
            type: 'job.failed',
            machineId: job.machine_id,
            actor: 'system',
            reason: failure ?? '',
            data: { job_id: job.id, job_type: job.type },
          });
        }
      }, 1);
      if (!interrupted) this.#o.onFinished(job.type, failure === null ? 'succeeded' : retry ? 'retrying' : 'failed');
    } catch (error) {
      log.error({ err: error, job: job.id }, 'could not record the end of a job');
    }
  }

  /** Stops claiming; running jobs get `graceMs` to finish, then are aborted (their lease lets them be retried). */
  async stop(graceMs = 5_000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const all = Promise.all(this.#done);
    const timeout = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([all, timeout]);
    for (const controller of this.#running.values()) controller.abort(new Error('server is stopping'));
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}
