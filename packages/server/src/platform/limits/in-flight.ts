/** What a source has: places taken now, and the callers waiting for one, first come first served. */
interface Line {
  running: number;
  waiting: Array<() => void>;
}

/**
 * Lets each source have at most `running` things in flight at once, and `waiting` more wait their turn; one
 * more is refused at once. Memory is bounded by what is in flight and waiting: a source with neither is
 * forgotten.
 */
export class InFlightLimiter {
  readonly #lines = new Map<string, Line>();
  readonly #running: number;
  readonly #waiting: number;

  constructor(limits: { running: number; waiting: number }) {
    this.#running = Math.max(1, limits.running);
    this.#waiting = Math.max(0, limits.waiting);
  }

  /**
   * A place for the source: resolves, at once or when one is given back, to the function that gives it back;
   * null when the source has `running` places and `waiting` callers already.
   */
  enter(source: string): Promise<() => void> | null {
    let line = this.#lines.get(source);
    if (!line) {
      line = { running: 0, waiting: [] };
      this.#lines.set(source, line);
    }
    const held = line;
    if (held.running < this.#running) {
      held.running++;
      return Promise.resolve(this.#leave(source, held));
    }
    if (held.waiting.length >= this.#waiting) return null;
    return new Promise((resolve) => held.waiting.push(() => resolve(this.#leave(source, held))));
  }

  #leave(source: string, line: Line): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = line.waiting.shift();
      // The place passes straight to the next in line; with nobody waiting it is given back.
      if (next) return next();
      line.running--;
      if (line.running === 0) this.#lines.delete(source);
    };
  }

  /** Sources with something in flight or waiting. */
  get size(): number {
    return this.#lines.size;
  }
}
