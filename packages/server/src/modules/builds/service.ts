import type { Job } from '@muster/contract';
import type { Dialect } from '../../platform/db/connect.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import { enqueueJob, toJob } from '../../platform/jobs/store.ts';
import { resolveMachine, transitionInTx } from '../machines/service.ts';
import type { BuildSettings } from './builder.ts';

export class BuildService {
  readonly #tx: Transactor;
  readonly #dialect: Dialect;
  readonly #config: BuildSettings;
  readonly #wake: () => void;

  constructor(tx: Transactor, dialect: Dialect, config: BuildSettings, wake: () => void) {
    this.#tx = tx;
    this.#dialect = dialect;
    this.#config = config;
    this.#wake = wake;
  }

  /** Moves the machine to building and queues its build job, in one transaction (shared with bulk). */
  async startInTx(tx: Tx, machineRef: string, actor: string): Promise<Job> {
    const row = await resolveMachine(tx.db, machineRef);
    await transitionInTx(tx, row, 'building', actor, 'build requested');
    const job = await enqueueJob(tx, this.#dialect, {
      type: 'build',
      machineId: row.id,
      maxAttempts: this.#config.builder.maxAttempts,
      createdBy: actor,
    });
    return toJob(job);
  }

  async start(actor: string, machineRef: string): Promise<Job> {
    const job = await this.#tx.run((tx) => this.startInTx(tx, machineRef, actor), 1);
    this.#wake();
    return job;
  }

  wake(): void {
    this.#wake();
  }
}
