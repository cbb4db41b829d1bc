import { type Event, MusterError } from '@muster/contract';
import type { Kysely } from 'kysely';
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

/** Runs units of work in transactions and publishes their events after commit. */
export class Transactor {
  readonly #db: Db;
  readonly #bus: EventBus;

  constructor(db: Db, bus: EventBus) {
    this.#db = db;
    this.#bus = bus;
  }

  get db(): Kysely<Database> {
    return this.#db.kysely;
  }

  async run<T>(work: (tx: Tx) => Promise<T>, attempts = 3): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const events: Event[] = [];
      try {
        const result = await this.#db.kysely.transaction().execute((trx) =>
          work({
            db: trx,
            emit: async (input) => {
              const event = await insertEvent(trx, this.#db.dialect, input);
              events.push(event);
              return event;
            },
          }),
        );
        // PostgreSQL replicas (this one included) hear the events through LISTEN; SQLite has one process.
        if (this.#db.dialect === 'sqlite') for (const event of events) this.#bus.publish(event);
        return result;
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        const retry = retryableCodes.has(code) || isUniqueViolation(error);
        if (!retry || attempt >= attempts) throw error;
      }
    }
  }
}
