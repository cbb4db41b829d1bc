import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Budget, BudgetExceeded } from './budget.ts';
import { AttemptsUnderWay, type FailureCounter, type FailureStanding, standingOf } from './limiter.ts';
import { addFailures, claimSpentReport, forgetFailures, pruneFailures, recentFailures, reserveAllowance } from './store.ts';

/** Failure rows are pruned at most this often, by whichever replica records a failure. */
const pruneEveryMs = 10_000;

/**
 * Failures per key that every replica on one PostgreSQL sees. Each check reads the database (one indexed
 * query, nothing cached), so a failure recorded by one replica counts on the next check of any other; a
 * correct attempt only reads. Rows expire with their window and are pruned every 10 s while failures arrive.
 */
export class SharedFailureCounter implements FailureCounter {
  readonly #db: Kysely<Database>;
  readonly #scope: string;
  readonly #max: number;
  readonly #windowMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #underWay: AttemptsUnderWay;
  #prunedAt = 0;

  constructor(db: Kysely<Database>, scope: string, limits: { max: number; windowMs: number }, onError: (error: unknown) => void) {
    this.#db = db;
    this.#scope = scope;
    this.#max = limits.max;
    this.#windowMs = limits.windowMs;
    this.#onError = onError;
    this.#underWay = new AttemptsUnderWay(limits.max);
  }

  attempt(keys: readonly string[], standings: readonly FailureStanding[], clean?: number, now = Date.now()): (() => void) | null {
    return this.#underWay.take(keys, standings, clean, now);
  }

  async standing(keys: readonly string[], now = Date.now()): Promise<FailureStanding[]> {
    const recent = await recentFailures(this.#db, this.#scope, keys, now - this.#windowMs);
    return keys.map((key) => {
      const found = recent.get(key);
      return standingOf(found?.failures ?? 0, found?.oldest ?? now, this.#max, this.#windowMs, now);
    });
  }

  async fail(keys: readonly string[], now = Date.now()): Promise<void> {
    if (keys.length === 0) return;
    this.#underWay.failed(keys, now);
    await addFailures(this.#db, this.#scope, keys, now, now + this.#windowMs);
    if (now - this.#prunedAt >= pruneEveryMs) {
      this.#prunedAt = now;
      this.prune(now).catch(this.#onError);
    }
  }

  async forgive(key: string): Promise<void> {
    await forgetFailures(this.#db, this.#scope, key);
  }

  /** Deletes the failure rows (of every scope) whose window has passed; returns how many. */
  prune(now = Date.now()): Promise<number> {
    return pruneFailures(this.#db, now);
  }
}

/** Allowance a replica asks for at once: 1% of the budget, at least one. */
function reservationSize(perMinute: number): number {
  return Math.max(1, Math.ceil(perMinute / 100));
}

/**
 * A minute budget that every replica on one PostgreSQL shares. A replica reserves allowance in chunks of 1% of
 * the budget from one row per budget and admits from its chunk without a round trip; only the admission that
 * finds its chunk empty waits for the next one, and a replica that found the window spent refuses without
 * asking again until it ends. Grants never add up to more than the budget; a replica may be left holding up
 * to a chunk less one that it did not use (docs/security.md). Reservations may be awaited inside a
 * transaction, so `db` must not be the pool those transactions hold (counters.ts gives them their own).
 */
export class SharedBudget implements Budget {
  readonly #db: Kysely<Database>;
  readonly #scope: string;
  readonly #perMinute: number;
  readonly #ask: number;
  readonly #onExceeded: (exceeded: BudgetExceeded) => void;
  readonly #onError: (error: unknown) => void;
  #windowStart = 0;
  #windowEnd = 0;
  #left = 0;
  #spent = false;
  #reported = false;
  #reserving: Promise<void> | null = null;

  constructor(
    db: Kysely<Database>,
    scope: string,
    perMinute: number,
    handlers: { onExceeded?: (exceeded: BudgetExceeded) => void; onError: (error: unknown) => void },
  ) {
    this.#db = db;
    this.#scope = scope;
    this.#perMinute = perMinute;
    this.#ask = reservationSize(perMinute);
    this.#onExceeded = handlers.onExceeded ?? (() => {});
    this.#onError = handlers.onError;
  }

  admit(door: string, now = Date.now()): boolean | Promise<boolean> {
    if (this.#perMinute <= 0) return true;
    return this.#admitInHand(door, now) ?? this.#admitReserving(door, now);
  }

  /** The answer from the chunk in hand, or null when only a new reservation can tell. */
  #admitInHand(door: string, now: number): boolean | null {
    if (now >= this.#windowEnd) return null;
    if (this.#left > 0) {
      this.#left--;
      return true;
    }
    if (!this.#spent) return null;
    this.#report(door);
    return false;
  }

  async #admitReserving(door: string, now: number): Promise<boolean> {
    for (;;) {
      // One reservation at a time: admissions that arrive meanwhile share its chunk.
      this.#reserving ??= this.#reserve(now).finally(() => {
        this.#reserving = null;
      });
      await this.#reserving;
      const answer = this.#admitInHand(door, now);
      if (answer !== null) return answer;
    }
  }

  async #reserve(now: number): Promise<void> {
    const window = await reserveAllowance(this.#db, this.#scope, this.#ask, 60_000, now);
    // What the others had asked for before this ask decides how much of it fits under the budget.
    const granted = Math.min(this.#ask, Math.max(0, this.#perMinute - (window.reserved - this.#ask)));
    if (window.window_start !== this.#windowStart) {
      this.#windowStart = window.window_start;
      this.#left = 0;
      this.#reported = false;
    }
    this.#windowEnd = window.window_end;
    this.#left += granted;
    this.#spent = granted < this.#ask;
  }

  /** The first refusal of a window across all replicas is reported once. */
  #report(door: string): void {
    if (this.#reported) return;
    this.#reported = true;
    const windowStart = this.#windowStart;
    claimSpentReport(this.#db, this.#scope, windowStart)
      .then((first) => {
        if (first) this.#onExceeded({ door, limit: this.#perMinute, window_started_at: new Date(windowStart).toISOString() });
      })
      .catch(this.#onError);
  }

  retryAfter(now = Date.now()): number {
    return Math.max(1, Math.ceil((this.#windowEnd - now) / 1000));
  }
}
