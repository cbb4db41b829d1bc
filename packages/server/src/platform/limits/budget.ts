/** What a budget tells once per window when it first refuses. */
export interface BudgetExceeded {
  door: string;
  limit: number;
  window_started_at: string;
}

/**
 * A server-wide allowance per minute: a window starts at the first admission after the last one ended. The
 * first refusal in a window is reported once, never one report per refused request. In memory for one server
 * (MinuteBudget), in PostgreSQL for replicas (SharedBudget in shared.ts); limitsFor (counters.ts) picks one.
 */
export interface Budget {
  /** Takes one from this window's allowance; false when it is spent. Answers at once while allowance is in hand. */
  admit(door: string, now?: number): boolean | Promise<boolean>;
  /** Seconds until the allowance is renewed. */
  retryAfter(now?: number): number;
}

/** A budget kept in memory, for one server. */
export class MinuteBudget implements Budget {
  readonly #perMinute: number;
  readonly #onExceeded: (exceeded: BudgetExceeded) => void;
  #windowStart = 0;
  #used = 0;
  #reported = false;

  constructor(perMinute: number, onExceeded: (exceeded: BudgetExceeded) => void = () => {}) {
    this.#perMinute = perMinute;
    this.#onExceeded = onExceeded;
  }

  /** Takes one from this minute's allowance; false when it is spent (0 per minute means unlimited). */
  admit(door: string, now = Date.now()): boolean {
    if (this.#perMinute <= 0) return true;
    if (now - this.#windowStart >= 60_000) {
      this.#windowStart = now;
      this.#used = 0;
      this.#reported = false;
    }
    if (this.#used < this.#perMinute) {
      this.#used++;
      return true;
    }
    if (!this.#reported) {
      this.#reported = true;
      this.#onExceeded({ door, limit: this.#perMinute, window_started_at: new Date(this.#windowStart).toISOString() });
    }
    return false;
  }

  /** Seconds until the allowance is renewed. */
  retryAfter(now = Date.now()): number {
    return Math.max(1, Math.ceil((this.#windowStart + 60_000 - now) / 1000));
  }
}
