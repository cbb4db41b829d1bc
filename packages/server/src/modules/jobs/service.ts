import { type Job, type JobListQuery, MusterError, type PageResult } from '@muster/contract';
import { decodeCursor, defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { JobRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { toJob } from '../../platform/jobs/store.ts';
import { resolveMachine } from '../machines/service.ts';

export class JobService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async #find(id: string): Promise<JobRow> {
    const row = await this.#tx.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new MusterError('not_found', `No job ${id}`);
    return row;
  }

  async get(id: string): Promise<Job> {
    return toJob(await this.#find(id));
  }

  async log(id: string): Promise<string> {
    return (await this.#find(id)).log;
  }

  /** Newest first. */
  async list(query: JobListQuery): Promise<PageResult<Job>> {
    const limit = query.limit ?? defaultPageSize;
    let q = this.#tx.db
      .selectFrom('jobs')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (query.state) q = q.where('state', '=', query.state);
    if (query.type) q = q.where('type', '=', query.type);
    if (query.machine) q = q.where('machine_id', '=', (await resolveMachine(this.#tx.db, query.machine)).id);
    if (query.cursor) q = q.where('id', '<', String(decodeCursor(query.cursor, 1)[0]));
    return finishPage(await q.execute(), limit, (r) => [r.id], toJob);
  }

  async countByState(): Promise<Record<string, number>> {
    const rows = await this.#tx.db
      .selectFrom('jobs')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('state')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Cancels a job that has not started; a running job finishes or fails on its own. */
  async cancel(actor: string, id: string): Promise<Job> {
    const row = await this.#find(id);
    await this.#tx.run(async (tx) => {
      const result = await tx.db
        .updateTable('jobs')
        .set({ state: 'cancelled', finished_at: new Date().toISOString() })
        .where('id', '=', id)
        .where('state', '=', 'queued')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1)
        throw new MusterError('conflict', `Job ${id} is ${row.state}; only a queued job can be cancelled`);
      await tx.emit({ type: 'job.cancelled', machineId: row.machine_id, actor, data: { job_id: id, job_type: row.type } });
    }, 1);
    return this.get(id);
  }
}
