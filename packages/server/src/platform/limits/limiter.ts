/** How one key stands: its failures within the window, and the seconds until it may try again (0: now). */
export interface FailureStanding {
  failures: number;
  retryAfter: number;
}

/**
 * Failures per key in a sliding window; a key with too many waits until they age out. Checks come before the
 * work and failures are counted after it, so only failures write. In memory for one server (FailureLimiter),
 * in PostgreSQL for replicas (SharedFailureCounter in shared.ts); limitsFor (counters.ts) picks one.
 */
export interface FailureCounter {
  /** How each key stands, in the order given. */
  standing(keys: readonly string[], now?: number): Promise<FailureStanding[]>;
  /** Counts one failure against each key. */
  fail(keys: readonly string[], now?: number): Promise<void>;
  /** Forgets a key's failures. Callers forgive only a key that has some, so a correct attempt writes nothing. */
  forgive(key: string): Promise<void>;
  /**
   * Takes a place for an attempt of these keys, given their standing: null when their failures plus the attempts
   * under way in this process reach the limit. Guesses sent at once are counted before their outcome is known, so a
   * burst cannot try more than the limit (per replica). `clean`: a key with no failure may have this many under way
   * instead (a site claiming its devices through one NAT address is not held to the failure limit). The returned
   * function gives the place back.
   */
  attempt(keys: readonly string[], standings: readonly FailureStanding[], clean?: number, now?: number): (() => void) | null;
}

/** How long a key that failed stays held to the failure limit, however long ago its failures aged out. */
const heldForMs = 60 * 60_000;

/** Attempts under way per key in this process, for FailureCounter.attempt. */
export class AttemptsUnderWay {
  readonly #pending = new Map<string, number>();
  /** When each key last failed (at most 100,000 keys, the oldest forgotten first). */
  readonly #failedAt = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Records a failure: the key has no clean allowance for the next hour, so a burst cannot come back each minute. */
  failed(keys: readonly string[], now = Date.now()): void {
    for (const key of keys) {
      this.#failedAt.delete(key);
      this.#failedAt.set(key, now);
      if (this.#failedAt.size > 100_000) this.#failedAt.delete(this.#failedAt.keys().next().value as string);
    }
  }

  #clean(key: string, failures: number, now: number): boolean {
    if (failures > 0) return false;
    const at = this.#failedAt.get(key);
    if (at === undefined) return true;
    if (now - at < heldForMs) return false;
    this.#failedAt.delete(key);
    return true;
  }

  take(keys: readonly string[], standings: readonly FailureStanding[], clean?: number, now = Date.now()): (() => void) | null {
    if (this.#max <= 0) return () => {};
    const full = (key: string, i: number) => {
      const pending = this.#pending.get(key) ?? 0;
      return clean !== undefined && this.#clean(key, standings[i].failures, now)
        ? pending >= clean
        : standings[i].failures + pending >= this.#max;
    };
    if (keys.some(full)) return null;
    for (const key of keys) this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      for (const key of keys) {
        const left = (this.#pending.get(key) ?? 1) - 1;
        if (left > 0) this.#pending.set(key, left);
        else this.#pending.delete(key);
      }
    };
  }
}

/**
 * Claims one address may have under way while it has no wrong one: a site's NAT claims many devices at once. The
 * secrets claims carry are random (120 bits and more), so guessing stays hopeless at any rate; the failure limit
 * bounds the load, and past the first failure a burst is held to it.
 */
export const cleanClaimsUnderWay = 64;

/**
 * Runs one attempt (a claim) counted against `key`: refused with `refuse(seconds)` while the key is at its limit,
 * its failures (as `failed` tells them) counted before its place is given back.
 */
export async function countedAttempt<T>(
  counter: FailureCounter,
  key: string,
  work: () => Promise<T>,
  failed: (error: unknown) => boolean,
  refuse: (seconds: number) => Error,
  onCountError: (error: unknown) => void,
): Promise<T> {
  const standings = await counter.standing([key]);
  if (standings[0].retryAfter > 0) throw refuse(standings[0].retryAfter);
  const release = counter.attempt([key], standings, cleanClaimsUnderWay);
  if (!release) throw refuse(1);
  try {
    return await work();
  } catch (error) {
    if (failed(error)) await counter.fail([key]).catch(onCountError);
    throw error;
  } finally {
    release();
  }
}

/** The standing of a key with `failures` in the window, the oldest at `oldest` (ms): it waits until that one ages out. */
export function standingOf(failures: number, oldest: number, max: number, windowMs: number, now: number): FailureStanding {
  if (max <= 0 || failures < max) return { failures, retryAfter: 0 };
  return { failures, retryAfter: Math.max(1, Math.ceil((oldest + windowMs - now) / 1000)) };
}

/** A failure counter in memory, for one server: at most 100,000 keys, the oldest forgotten first. */
export class FailureLimiter implements FailureCounter {
  readonly #failures = new Map<string, number[]>();
  readonly #max: number;
  readonly #windowMs: number;
  readonly #underWay: AttemptsUnderWay;

  constructor(max: number, windowMs: number) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#underWay = new AttemptsUnderWay(max);
  }

  attempt(keys: readonly string[], standings: readonly FailureStanding[], clean?: number, now = Date.now()): (() => void) | null {
    return this.#underWay.take(keys, standings, clean, now);
  }

  #recent(key: string, now: number): number[] {
    const cutoff = now - this.#windowMs;
    const times = (this.#failures.get(key) ?? []).filter((t) => t > cutoff);
    if (times.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, times);
    return times;
  }

  async standing(keys: readonly string[], now = Date.now()): Promise<FailureStanding[]> {
    return keys.map((key) => {
      const times = this.#recent(key, now);
      return standingOf(times.length, times[0] ?? now, this.#max, this.#windowMs, now);
    });
  }

  async fail(keys: readonly string[], now = Date.now()): Promise<void> {
    this.#underWay.failed(keys, now);
    for (const key of keys) {
      this.#failures.set(key, [...this.#recent(key, now), now]);
      if (this.#failures.size > 100_000) this.#failures.delete(this.#failures.keys().next().value as string);
    }
  }

  async forgive(key: string): Promise<void> {
    this.#failures.delete(key);
  }
}

export interface SourceLimits {
  /** Tokens a source gets back per minute; 0 turns the limit off. */
  ratePerMinute: number;
  /** Requests a source may make at once before the rate applies. */
  burst: number;
  /** Sources remembered at most; the one seen longest ago is forgotten first (it starts again with a full bucket). */
  maxSources?: number;
}

/**
 * A token bucket per source. Memory is bounded: a spray of sources evicts the least recently seen
 * buckets, and a forgotten source only gets its burst back, never more.
 */
export class SourceLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;
  readonly #burst: number;
  readonly #maxSources: number;

  constructor(limits: SourceLimits) {
    this.#perMs = limits.ratePerMinute / 60_000;
    this.#burst = Math.max(1, limits.burst);
    this.#maxSources = limits.maxSources ?? 50_000;
  }

  get enabled(): boolean {
    return this.#perMs > 0;
  }

  /** Takes one token for the source: 0 when the request may go ahead, else the seconds until it may. */
  take(source: string, now = Date.now()): number {
    if (this.#perMs <= 0) return 0;
    const bucket = this.#buckets.get(source);
    let tokens = this.#burst;
    if (bucket) {
      tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#perMs);
      this.#buckets.delete(source);
    } else if (this.#buckets.size >= this.#maxSources) {
      this.#buckets.delete(this.#buckets.keys().next().value as string);
    }
    if (tokens < 1) {
      this.#buckets.set(source, { tokens, at: now });
      return Math.max(1, Math.ceil((1 - tokens) / this.#perMs / 1000));
    }
    this.#buckets.set(source, { tokens: tokens - 1, at: now });
    return 0;
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/**
 * The key a source is limited by: an IPv4 address, or the /64 of an IPv6 address (one host commonly holds a
 * whole /64, so per address would let it pick a fresh source per request).
 */
export function sourceKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, '').toLowerCase())
    .join(':')}::/64`;
}
