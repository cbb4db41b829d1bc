import { type Event, MusterError } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { Db, Dialect } from './connect.ts';
import type { EventBus } from './event-bus.ts';
import { insertEvent, type NewEvent } from './event-store.ts';
import type { Database } from './schema.ts';

export interface Tx {
  db: Kysely<Database>;
  dialect: Dialect;
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
  attempts: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const maxBatch = 64;

/**
 * Runs units of work in transactions and publishes their events after commit.
 *
 * Work that arrives while transactions run is grouped into the next one (group commit), and every caller
 * hears of its result only after the shared COMMIT. One commit then writes the table and index pages that
 * consecutive units share once instead of once per unit, and PostgreSQL flushes its log once per batch.
 * When a unit fails, the batch is rolled back and its units run again one transaction each (retrying
 * PostgreSQL's unique and serialisation races), so a failure still undoes only its own unit. Units are
 * database work only, so running one again is safe. SQLite has one batch at a time; PostgreSQL a few, each
 * on its own connection.
 */
export class Transactor {
  readonly #db: Db;
  readonly #bus: EventBus;
  readonly #queue: Pending[] = [];
  readonly #maxLanes: number;
  readonly #onCommitted: (events: Event[]) => void;
  #lanes = 0;

  /** `onCommitted` hears the events this process committed (the bus also carries other replicas' events). */
  constructor(db: Db, bus: EventBus, onCommitted: (events: Event[]) => void = () => {}) {
    this.#db = db;
    this.#bus = bus;
    this.#onCommitted = onCommitted;
    this.#maxLanes = db.dialect === 'sqlite' ? 1 : 4;
  }

  get db(): Kysely<Database> {
    return this.#db.kysely;
  }

  get dialect(): Dialect {
    return this.#db.dialect;
  }

  #tx(db: Kysely<Database>, events: Event[]): Tx {
    return {
      db,
      dialect: this.#db.dialect,
      emit: async (input) => {
        const event = await insertEvent(db, this.#db.dialect, input);
        events.push(event);
        return event;
      },
    };
  }

  run<T>(work: (tx: Tx) => Promise<T>, attempts = 3): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, attempts, resolve: resolve as (value: unknown) => void, reject });
      // node:sqlite finishes a whole transaction in microtasks; waiting one turn of the event loop lets
      // the requests that arrived meanwhile join the batch.
      if (this.#lanes < this.#maxLanes) {
        this.#lanes++;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#runBatch(this.#queue.splice(0, maxBatch));
    } finally {
      this.#lanes--;
    }
  }

  /** One transaction for the whole batch; if any unit fails, the batch is undone and each unit runs alone. */
  async #runBatch(batch: Pending[]): Promise<void> {
    if (batch.length > 1) {
      const results = await this.#attempt(batch).catch(() => null);
      if (results) return this.#settle(batch, results);
    }
    for (const pending of batch) {
      for (let attempt = 1; ; attempt++) {
        try {
          const [result] = await this.#attempt([pending]);
          this.#settle([pending], [result]);
          break;
        } catch (error) {
          const code = (error as { code?: string }).code ?? '';
          const retry = retryableCodes.has(code) || isUniqueViolation(error);
          if (!retry || attempt >= pending.attempts) {
            pending.reject(error);
            break;
          }
        }
      }
    }
  }

  async #attempt(batch: Pending[]): Promise<{ value: unknown; events: Event[] }[]> {
    return this.#db.kysely.transaction().execute(async (trx) => {
      const results: { value: unknown; events: Event[] }[] = [];
      for (const pending of batch) {
        const events: Event[] = [];
        results.push({ value: await pending.work(this.#tx(trx, events)), events });
      }
      return results;
    });
  }

  #settle(batch: Pending[], results: { value: unknown; events: Event[] }[]): void {
    for (const [i, pending] of batch.entries()) {
      // PostgreSQL replicas (this one included) hear the events through LISTEN; SQLite has one process.
      if (this.#db.dialect === 'sqlite') for (const event of results[i].events) this.#bus.publish(event);
      if (results[i].events.length > 0) this.#onCommitted(results[i].events);
      pending.resolve(results[i].value);
    }
  }
}
