import type { Kysely } from 'kysely';
import { withAdvisoryLock } from '../../platform/db/advisory-lock.ts';
import type { Dialect } from '../../platform/db/connect.ts';
import type { Database } from '../../platform/db/schema.ts';

/** The first key of muster's advisory locks on artifacts ("art" in ASCII); the second comes from the digest. */
const advisoryClass = 0x617274;

/**
 * Serialises the steps that put a blob and its row in place against those that remove them, so that a row
 * never points at a missing file: one at a time in this process (each takes milliseconds), and on
 * PostgreSQL also across replicas, with an advisory lock on the digest held on one connection.
 */
export class BlobLock {
  readonly #db: Kysely<Database>;
  readonly #dialect: Dialect;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.#db = db;
    this.#dialect = dialect;
  }

  run<T>(sha256: string, work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(() => this.#locked(sha256, work));
    this.#tail = result.catch(() => {});
    return result;
  }

  #locked<T>(sha256: string, work: () => Promise<T>): Promise<T> {
    if (this.#dialect === 'sqlite') return work();
    return withAdvisoryLock(this.#db, advisoryClass, Number.parseInt(sha256.slice(0, 8), 16) | 0, work);
  }
}
