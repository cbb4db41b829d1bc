import type { Transactor } from './transact.ts';

/** How long rows that devices create are kept, in seconds; 0 keeps them for ever. */
export interface RetentionPolicy {
  bootRequestsSeconds: number;
  eventsSeconds: number;
}

export interface PruneReport {
  boot_sessions: number;
  boot_requests: number;
  events: number;
}

/** Rows deleted per statement: short transactions, so requests are not held up behind a prune. */
const batchSize = 2000;
export const pruneIntervalMs = 60 * 60_000;

/**
 * Deletes boot sessions (with their requests) whose last request is older than the boot-request retention,
 * and events written by devices (actor device, or a boot.* type) older than the event retention. Operators'
 * audit events are kept. Safe on several replicas at once: each batch deletes what is still there.
 */
export async function pruneOldRows(tx: Transactor, policy: RetentionPolicy, now = new Date()): Promise<PruneReport> {
  const report: PruneReport = { boot_sessions: 0, boot_requests: 0, events: 0 };
  if (policy.bootRequestsSeconds > 0) {
    const cutoff = new Date(now.getTime() - policy.bootRequestsSeconds * 1000).toISOString();
    for (;;) {
      const deleted = await tx.run(async ({ db }) => {
        const ids = (await db.selectFrom('boot_sessions').select('id').where('last_at', '<', cutoff).limit(batchSize).execute()).map(
          (r) => r.id,
        );
        if (ids.length === 0) return null;
        const requests = await db.deleteFrom('boot_requests').where('session_id', 'in', ids).executeTakeFirst();
        const sessions = await db.deleteFrom('boot_sessions').where('id', 'in', ids).executeTakeFirst();
        return { sessions: Number(sessions.numDeletedRows), requests: Number(requests.numDeletedRows), batch: ids.length };
      });
      if (!deleted) break;
      report.boot_sessions += deleted.sessions;
      report.boot_requests += deleted.requests;
      if (deleted.batch < batchSize) break;
    }
  }
  if (policy.eventsSeconds > 0) {
    const cutoff = new Date(now.getTime() - policy.eventsSeconds * 1000).toISOString();
    for (;;) {
      const deleted = await tx.run(async ({ db }) => {
        // In id order, the oldest rows come first: each batch stops at its limit instead of reading the table.
        const old = db
          .selectFrom('events')
          .select('id')
          .where('created_at', '<', cutoff)
          .where((eb) => eb.or([eb('actor', '=', 'device'), eb('type', 'like', 'boot.%')]))
          .orderBy('id')
          .limit(batchSize);
        const result = await db.deleteFrom('events').where('id', 'in', old).executeTakeFirst();
        return Number(result.numDeletedRows);
      });
      report.events += deleted;
      if (deleted < batchSize) break;
    }
  }
  return report;
}

/** Prunes once an interval, from start until stop; a failed prune is logged and tried again next time. */
export class RetentionTimer {
  readonly #tx: Transactor;
  readonly #policy: RetentionPolicy;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;

  constructor(tx: Transactor, policy: RetentionPolicy, onError: (error: unknown) => void) {
    this.#tx = tx;
    this.#policy = policy;
    this.#onError = onError;
  }

  prune(now?: Date): Promise<PruneReport> {
    return pruneOldRows(this.#tx, this.#policy, now);
  }

  start(firstAfterMs = 60_000): void {
    if (this.#policy.bootRequestsSeconds <= 0 && this.#policy.eventsSeconds <= 0) return;
    const tick = (next: number) => {
      this.#timer = setTimeout(() => {
        this.#running = this.prune()
          .catch(this.#onError)
          .finally(() => {
            this.#running = null;
            if (this.#timer) tick(pruneIntervalMs);
          });
      }, next);
      this.#timer.unref();
    };
    tick(firstAfterMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
