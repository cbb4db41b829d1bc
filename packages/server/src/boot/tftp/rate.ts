/** New requests a client address may make: `burst` at once, then `perSecond` on average. */
export interface RequestRate {
  burst: number;
  perSecond: number;
}

/** A Pi asks for about 15 files a boot and a PXE machine for a few: ample for a boot storm, where each has its own address. */
export const defaultRequestRate: RequestRate = { burst: 50, perSecond: 10 };

/** Buckets kept at most: a flood from spoofed addresses cannot grow the table past this. */
const maxClients = 65_536;
const pruneEveryMs = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per client address. A full bucket carries no information, so buckets that refilled are dropped. */
export class RequestRateLimit {
  readonly #rate: RequestRate;
  readonly #buckets = new Map<string, Bucket>();
  #prunedAt = 0;

  constructor(rate: RequestRate) {
    if (!(rate.burst >= 1) || !(rate.perSecond > 0)) {
      throw new Error(`requestRate: burst must be at least 1 and perSecond above 0, got ${JSON.stringify(rate)}`);
    }
    this.#rate = rate;
  }

  /** Takes a token for a request from `address`: false when its bucket is empty (or the table is full of others). */
  take(address: string, now = performance.now()): boolean {
    if (now - this.#prunedAt >= pruneEveryMs) this.#prune(now);
    let bucket = this.#buckets.get(address);
    if (!bucket) {
      if (this.#buckets.size >= maxClients) {
        this.#prune(now);
        if (this.#buckets.size >= maxClients) return false;
      }
      bucket = { tokens: this.#rate.burst, at: now };
      this.#buckets.set(address, bucket);
    } else {
      bucket.tokens = this.#refilled(bucket, now);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Clients with a bucket (for tests). */
  get size(): number {
    return this.#buckets.size;
  }

  #refilled(bucket: Bucket, now: number): number {
    return Math.min(this.#rate.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate.perSecond);
  }

  #prune(now: number): void {
    this.#prunedAt = now;
    for (const [address, bucket] of this.#buckets) if (this.#refilled(bucket, now) >= this.#rate.burst) this.#buckets.delete(address);
  }
}
