import { type Event, MusterError } from '@muster/contract';
import type { ControlledTransaction, Kysely } from 'kysely';
import type { EventBus } from '../events/bus.ts';
import { insertEvent, type NewEvent } from '../events/record.ts';
import type { Db } from './connect.ts';
import type { Database } from './schema.ts';

export interface Tx {
  db: Kysely<Database>;
  /** Appends an event in this transaction; it is published only once the transaction commits. */
  emit(event: NewEvent): Promise<Event>;
}

const retryableCodes = new Set(['40001', '40P01']);

/** True for a unique-constraint violation on either database. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return e?.code === '23505' || /UNIQUE constraint failed/.test(e?.message ?? '');
}

/** Runs work that inserts a named thing; a unique violation becomes already_exists with `detail`. */
export async function orAlreadyExists<T>(detail: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isUniqueViolation(error)) throw new MusterError('already_exists', detail);
    throw error;
  }
}

interface Pending {
  work: (tx: Tx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const maxBatch = 64;

/**
 * Runs units of work in transactions and publishes their events after commit.
 *
 * On SQLite, work that arrives while a transaction runs is grouped into the next one (group commit):
 * each unit runs in its own savepoint, so a failing unit rolls back alone, and every caller hears of its
 * result only after the shared COMMIT. One commit then writes the table and index pages that consecutive
 * units share once instead of once per unit. PostgreSQL runs one transaction per unit on its pool.
 */
export class Transactor {
  readonly #db: Db;
  readonly #bus: EventBus;
  readonly #queue: Pending[] = [];
  #draining = false;

  constructor(db: Db, bus: EventBus) {
    this.#db = db;
    this.#bus = bus;
  }

  get db(): Kysely<Database> {
    return this.#db.kysely;
  }

  #tx(db: Kysely<Database>, events: Event[]): Tx {
    return {
      db,
      emit: async (input) => {
        const event = await insertEvent(db, this.#db.dialect, input);
        events.push(event);
        return event;
      },
    };
  }

  async run<T>(work: (tx: Tx) => Promise<T>, attempts = 3): Promise<T> {
    if (this.#db.dialect === 'sqlite') {
      return new Promise<T>((resolve, reject) => {
        this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
        // node:sqlite finishes a whole transaction in microtasks; waiting one turn of the event loop lets
        // the requests that arrived meanwhile join the batch.
        if (!this.#draining) {
          this.#draining = true;
          setImmediate(() => void this.#drain());
        }
      });
    }
    for (let attempt = 1; ; attempt++) {
      try {
        // Replicas (this one included) hear the events through LISTEN, so nothing is published here.
        return await this.#db.kysely.transaction().execute((trx) => work(this.#tx(trx, [])));
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        const retry = retryableCodes.has(code) || isUniqueViolation(error);
        if (!retry || attempt >= attempts) throw error;
      }
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#runBatch(this.#queue.splice(0, maxBatch));
    } finally {
      this.#draining = false;
    }
  }

  async #runBatch(batch: Pending[]): Promise<void> {
    const outcomes: { ok: boolean; value: unknown; events: Event[] }[] = [];
    let trx: ControlledTransaction<Database>;
    try {
      trx = await this.#db.kysely.startTransaction().execute();
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    try {
      for (const pending of batch) {
        const savepoint = await trx.savepoint('unit').execute();
        const events: Event[] = [];
        try {
          const value = await pending.work(this.#tx(savepoint, events));
          await savepoint.releaseSavepoint('unit').execute();
          outcomes.push({ ok: true, value, events });
        } catch (error) {
          await savepoint.rollbackToSavepoint('unit').execute();
          await savepoint.releaseSavepoint('unit').execute();
          outcomes.push({ ok: false, value: error, events: [] });
        }
      }
      await trx.commit().execute();
    } catch (error) {
      await trx
        .rollback()
        .execute()
        .catch(() => {});
      for (const pending of batch) pending.reject(error);
      return;
    }
    for (const [i, pending] of batch.entries()) {
      const outcome = outcomes[i];
      if (!outcome.ok) {
        pending.reject(outcome.value);
        continue;
      }
      for (const event of outcome.events) this.#bus.publish(event);
      pending.resolve(outcome.value);
    }
  }
}
