/**
 * Counts what each source has in flight and lets it have at most `max` at once. Memory is bounded by what
 * is in flight: a source with nothing left in flight is forgotten.
 */
export class InFlightLimiter {
  readonly #counts = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place for the source: the function that gives it back, or null when the source has `max` already. */
  enter(source: string): (() => void) | null {
    const count = this.#counts.get(source) ?? 0;
    if (count >= this.#max) return null;
    this.#counts.set(source, count + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const now = (this.#counts.get(source) ?? 1) - 1;
      if (now > 0) this.#counts.set(source, now);
      else this.#counts.delete(source);
    };
  }

  /** Sources with something in flight. */
  get size(): number {
    return this.#counts.size;
  }
}
