/** What a budget tells once per window when it first refuses. */
export interface BudgetExceeded {
  door: string;
  limit: number;
  window_started_at: string;
}

/**
 * A server-wide allowance per minute (a fixed window), kept in memory: with several replicas each process
 * has its own. The first refusal in a window is reported once, never one report per refused request.
 */
export class MinuteBudget {
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
