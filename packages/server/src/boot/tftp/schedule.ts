/**
 * Admission of large transfers by deadline (see docs/tftp.md, "Storms"). A client such as the Pi bootloader gives up
 * on a file that has not arrived whole within its limit (30 s), so serving every transfer evenly makes all of them
 * miss it together once the server is short of throughput. Instead, past its first window a large transfer waits to
 * be admitted: in the order of its client's boot (the client that began first goes first), and only while the
 * transfers already admitted, with it, can be served within a share of the limit at the throughput this thread
 * measured. A waiting transfer costs nothing but the lookup of its client's repeated ACK.
 */

/** A transfer that asks to be admitted. Times are performance.now() times of this thread. */
export interface Admissible {
  /** Lower goes first: when its client's boot began (the server's first request from its address lately). */
  readonly rank: number;
  /** When its client gives up on the file (it asked at `giveUpAt - limitMs`). */
  readonly giveUpAt: number;
  /** The client's limit for one file. */
  readonly limitMs: number;
  /** File bytes the client has not acknowledged yet. */
  readonly remaining: number;
  /** Admitted: go on sending. */
  admit(): void;
  /** Its client cannot get the file in time: end it (it is no longer the scheduler's). */
  refuse(): void;
}

/** Transfers of this size or more wait to be admitted past their first window; smaller ones never wait. */
export const admittedFromBytes = 256 * 1024;
/** Admitted transfers below this many go on regardless of the measured throughput, so it can be measured. */
export const minActive = 4;
/** Admit while what is admitted drains, at the measured throughput, within this share of the client's limit. */
export const targetShare = 1 / 10;
/** Throughput is measured over this window, sampled every tick. */
const windowMs = 2000;
/**
 * What the thread can serve is the best throughput measured this long back. The throughput of the moment follows
 * what was admitted: judged by it alone, a lull (few admitted, or their clients slow) would admit fewer still.
 */
const capacityMs = 10_000;
/** An admitted transfer's own pace is judged once it has run this long. */
const paceAfterMs = 1000;
/** An admitted transfer is late when at its own pace it would end less than this share of the limit before it. */
const marginShare = 1 / 10;
const tickMs = 100;
/** A measurement needs at least this much history. */
const minSampleMs = 100;

export class Scheduler {
  /** Admitted transfers, with when they were admitted and what they had left then (to tell their pace). */
  readonly #active = new Map<Admissible, { at: number; remaining: number }>();
  /** Waiting transfers, best first: by rank, then giveUpAt. */
  readonly #waiting: Admissible[] = [];
  readonly #samples: { at: number; served: number }[] = [];
  /** Throughput over the window at each tick of the last 10 s (bytes per ms). */
  readonly #rates: { at: number; rate: number }[] = [];
  readonly #now: () => number;
  #served = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #useTimer: boolean;

  /** `now` and `useTimer: false` are for tests, which call tick() themselves. */
  constructor(options: { now?: () => number; useTimer?: boolean } = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#useTimer = options.useTimer ?? true;
  }

  get active(): number {
    return this.#active.size;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Counts file bytes a client acknowledged (any transfer of this thread): the throughput measured. */
  served(bytes: number): void {
    this.#served += bytes;
  }

  /** Asks for admission: `admit` is called now or later, or `refuse` once its client can no longer make it. */
  wait(item: Admissible): void {
    let low = 0;
    let high = this.#waiting.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      const other = this.#waiting[mid];
      if (other.rank < item.rank || (other.rank === item.rank && other.giveUpAt <= item.giveUpAt)) low = mid + 1;
      else high = mid;
    }
    this.#waiting.splice(low, 0, item);
    this.#arm();
    this.#admit();
  }

  /** A transfer ended (admitted or waiting): its share goes to the next. */
  leave(item: Admissible): void {
    if (!this.#active.delete(item)) {
      const index = this.#waiting.indexOf(item);
      if (index < 0) return;
      this.#waiting.splice(index, 1);
    }
    this.#admit();
  }

  /** Samples the throughput and admits or refuses what waits; the timer calls it every 100 ms. */
  tick(): void {
    const now = this.#now();
    this.#samples.push({ at: now, served: this.#served });
    while (this.#samples.length > 1 && now - this.#samples[0].at > windowMs) this.#samples.shift();
    const first = this.#samples[0];
    if (now - first.at >= minSampleMs) this.#rates.push({ at: now, rate: (this.#served - first.served) / (now - first.at) });
    while (this.#rates.length > 0 && now - this.#rates[0].at > capacityMs) this.#rates.shift();
    this.#admit();
    if (this.#active.size === 0 && this.#waiting.length === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#samples.length = 0;
      this.#rates.length = 0;
    }
  }

  /** Bytes per ms this thread can serve: the best measured over 2 s in the last 10 s; null before there is one. */
  rate(): number | null {
    let best: number | null = null;
    for (const { rate } of this.#rates) if (best === null || rate > best) best = rate;
    return best;
  }

  #arm(): void {
    if (this.#timer || !this.#useTimer) return;
    this.#samples.push({ at: this.#now(), served: this.#served });
    this.#timer = setInterval(() => this.tick(), tickMs);
    this.#timer.unref();
  }

  #admit(): void {
    const now = this.#now();
    const rate = this.rate();
    let backlog = -1;
    while (this.#waiting.length > 0) {
      const head = this.#waiting[0];
      const slack = head.giveUpAt - now;
      const busy = this.#active.size >= minActive;
      // Even the whole thread's throughput would not bring it in time: its client is better told now.
      if (slack <= 0 || (busy && rate !== null && head.remaining / Math.max(rate, 1e-9) > slack)) {
        this.#waiting.shift();
        head.refuse();
        continue;
      }
      if (busy) {
        if (rate === null || rate <= 0) return;
        if (backlog < 0) {
          // One admitted already falling behind its client's limit: the measured throughput is more than it gets.
          if (this.#late(now)) return;
          backlog = this.#backlog();
        }
        if ((backlog + head.remaining) / rate > Math.min(slack, head.limitMs * targetShare)) return;
        backlog += head.remaining;
      }
      this.#waiting.shift();
      this.#active.set(head, { at: now, remaining: head.remaining });
      head.admit();
    }
  }

  #backlog(): number {
    let bytes = 0;
    for (const item of this.#active.keys()) bytes += item.remaining;
    return bytes;
  }

  /** Whether an admitted transfer, at its own pace since it was admitted, would end too near its client's limit. */
  #late(now: number): boolean {
    for (const [item, since] of this.#active) {
      const ran = now - since.at;
      if (ran < paceAfterMs) continue;
      const pace = (since.remaining - item.remaining) / ran;
      if (pace <= 0 || now + item.remaining / pace > item.giveUpAt - item.limitMs * marginShare) return true;
    }
    return false;
  }
}

/** This thread's scheduler (each transfer thread admits its own transfers). */
export const scheduler = new Scheduler();
