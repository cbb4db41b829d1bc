/** Counts failures per key in a sliding window; a key with too many is refused until they age out. */
export class FailureLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #max: number;
  readonly #windowMs: number;

  constructor(max: number, windowMs: number) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  #recent(key: string): number[] {
    const cutoff = Date.now() - this.#windowMs;
    const times = (this.#failures.get(key) ?? []).filter((t) => t > cutoff);
    if (times.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, times);
    return times;
  }

  /** Seconds until the key may try again; 0 when it may now. */
  retryAfter(key: string): number {
    if (this.#max <= 0) return 0;
    const times = this.#recent(key);
    return times.length < this.#max ? 0 : Math.ceil((times[0] + this.#windowMs - Date.now()) / 1000);
  }

  fail(key: string): void {
    this.#failures.set(key, [...this.#recent(key), Date.now()]);
    if (this.#failures.size > 100_000) this.#failures.delete(this.#failures.keys().next().value as string);
  }

  succeed(key: string): void {
    this.#failures.delete(key);
  }
}
