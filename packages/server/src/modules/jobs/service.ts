import { type Job, type JobListQuery, MusterError, type PageResult } from '@muster/contract';
import { defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { JobRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { cancelQueuedJob, countJobsByState, findJobRow, jobRows, toJob } from '../../platform/jobs/store.ts';
import { resolveMachine } from '../machines/service.ts';

export class JobService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async #find(id: string): Promise<JobRow> {
    const row = await findJobRow(this.#tx.db, id);
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
    const machineId = query.machine ? (await resolveMachine(this.#tx.db, query.machine)).id : undefined;
    const rows = await jobRows(this.#tx.db, { state: query.state, type: query.type, machineId, cursor: query.cursor }, limit);
    return finishPage(rows, limit, (r) => [r.id], toJob);
  }

  async countByState(): Promise<Record<string, number>> {
    return countJobsByState(this.#tx.db);
  }

  /** Cancels a job that has not started; a running job finishes or fails on its own. */
  async cancel(actor: string, id: string): Promise<Job> {
    const row = await this.#find(id);
    await this.#tx.run(async (tx) => {
      if (!(await cancelQueuedJob(tx.db, id, new Date().toISOString())))
        throw new MusterError('conflict', `Job ${id} is ${row.state}; only a queued job can be cancelled`);
      await tx.emit({ type: 'job.cancelled', machineId: row.machine_id, actor, data: { job_id: id, job_type: row.type } });
    }, 1);
    return this.get(id);
  }
}
