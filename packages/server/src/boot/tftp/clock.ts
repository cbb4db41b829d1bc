/** Something with a retransmission deadline (a performance.now() time) and what to do when it passes. */
export interface Deadline {
  deadline: number;
  expire(): void;
}

/** How often the clock looks at the deadlines: a retransmission goes out at most this much after its deadline. */
export const tickMs = 20;

/**
 * One interval per thread checks every transfer's deadline, instead of a timer per transfer cleared and set again
 * on every ACK: an ACK then only writes a number. The interval runs only while something is watched.
 */
class RetransmitClock {
  readonly #watched = new Set<Deadline>();
  #timer: NodeJS.Timeout | null = null;
  #pollUntil = 0;
  #polling = false;

  /**
   * Keeps this thread's event loop polling its sockets instead of sleeping until `until` (a performance.now()
   * time): a pending setImmediate makes libuv poll without waiting. Waking a sleeping thread costs more than a
   * fast client's whole round trip (on loopback or a fast link), so a transfer asks for this only then.
   */
  pollUntil(until: number): void {
    if (until > this.#pollUntil) this.#pollUntil = until;
    if (this.#polling) return;
    this.#polling = true;
    setImmediate(this.#poll);
  }

  readonly #poll = (): void => {
    if (performance.now() < this.#pollUntil) setImmediate(this.#poll);
    else this.#polling = false;
  };

  watch(item: Deadline): void {
    this.#watched.add(item);
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#sweep(), tickMs);
    this.#timer.unref();
  }

  unwatch(item: Deadline): void {
    this.#watched.delete(item);
    if (this.#watched.size > 0 || !this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }

  #sweep(): void {
    const now = performance.now();
    for (const item of this.#watched) if (item.deadline <= now) item.expire();
  }
}

export const clock = new RetransmitClock();

/**
 * performance.now() counts from each thread's own start; process.hrtime() from one origin for the whole process.
 * The difference is taken from the closest of a few paired readings, so a preemption between two reads cannot skew it.
 */
function hrtimeOffsetMs(): number {
  let window = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let i = 0; i < 20; i++) {
    const before = performance.now();
    const hr = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < window) {
      window = after - before;
      offset = hr - (before + after) / 2;
    }
  }
  return offset;
}

const offsetMs = hrtimeOffsetMs();

/** A performance.now() reading of this thread as a time that compares with other threads' (in ms). */
export function processTime(at = performance.now()): number {
  return offsetMs + at;
}
