import { Worker } from 'node:worker_threads';
import type { TransferJob } from './ports.ts';
import type { TransferEnd } from './transfer.ts';
import type { TftpOutcome, TftpTransferable } from './types.ts';

/** A transfer running on a worker, as the main thread holds it. */
export interface RemoteTransfer {
  end(outcome: TftpOutcome, error: string): void;
}

export type ToWorker =
  | { type: 'start'; id: number; job: TransferJob; source: TftpTransferable }
  | { type: 'end'; id: number; outcome: TftpOutcome; error: string }
  | { type: 'stop' };
export type FromWorker =
  | { type: 'end'; id: number; end: TransferEnd }
  | { type: 'heard'; id: number }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

/** How long stop() waits for a worker to end its transfers and close their files before it is terminated. */
const stopWaitMs = 5000;
// From source the thread runs worker.ts beside this file; in the compiled package, dist/tftp-worker.js beside it.
const workerUrl = import.meta.url.endsWith('.ts') ? new URL('./worker.ts', import.meta.url) : new URL('./tftp-worker.js', import.meta.url);

interface Member {
  worker: Worker;
  alive: boolean;
  /** What to call when each of its transfers ends, by transfer id. */
  ends: Map<number, (end: TransferEnd) => void>;
  /** What to call when each of its transfers first hears from its client. */
  heards: Map<number, () => void>;
  stopped: () => void;
}

/**
 * Worker threads that run transfers, each from its own socket. The main thread keeps the listener, the resolver,
 * the limits and the reports; a worker gets a job and a serializable source, and answers with how it ended.
 */
export class TransferPool {
  readonly #members: Member[];
  readonly #onError: (error: unknown) => void;
  #nextId = 1;

  private constructor(members: Member[], onError: (error: unknown) => void) {
    this.#members = members;
    this.#onError = onError;
  }

  static async start(count: number, onError: (error: unknown) => void): Promise<TransferPool> {
    const members: Member[] = [];
    const pool = new TransferPool(members, onError);
    const started = Array.from({ length: count }, () => pool.#spawn());
    try {
      members.push(...(await Promise.all(started)));
    } catch (error) {
      for (const member of await Promise.allSettled(started)) if (member.status === 'fulfilled') await member.value.worker.terminate();
      throw error;
    }
    return pool;
  }

  async #spawn(): Promise<Member> {
    // A small young generation: every datagram dgram receives is a 64 KiB malloc shrunk to its size, and until a
    // scavenge frees the Buffer the allocator cannot reuse the hole, so a large young generation costs RSS.
    const worker = new Worker(workerUrl, { name: 'tftp-transfers', resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    const member: Member = { worker, alive: true, ends: new Map(), heards: new Map(), stopped: () => {} };
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'heard') {
        member.heards.get(message.id)?.();
        member.heards.delete(message.id);
      } else if (message.type === 'end') {
        const onEnd = member.ends.get(message.id);
        member.ends.delete(message.id);
        member.heards.delete(message.id);
        onEnd?.(message.end);
      } else if (message.type === 'error') {
        this.#onError(new Error(message.message));
      } else {
        member.stopped();
      }
    });
    worker.on('error', (error) => this.#onError(error));
    worker.on('exit', () => this.#lost(member));
    await new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    return member;
  }

  /** A worker that exited: its transfers end as errors, and it takes no more. */
  #lost(member: Member): void {
    member.alive = false;
    for (const [id, onEnd] of member.ends) {
      member.ends.delete(id);
      onEnd({ outcome: 'error', error: 'the transfer thread exited', bytes: 0, lastSentAt: 0 });
    }
    member.stopped();
  }

  /** Starts a transfer on the least busy worker; null when no worker is left. */
  run(
    job: TransferJob,
    source: TftpTransferable,
    onEnd: (end: TransferEnd) => void,
    onHeard: () => void = () => {},
  ): RemoteTransfer | null {
    let chosen: Member | null = null;
    for (const member of this.#members) if (member.alive && (!chosen || member.ends.size < chosen.ends.size)) chosen = member;
    if (!chosen) return null;
    const { worker, ends, heards } = chosen;
    const id = this.#nextId++;
    ends.set(id, onEnd);
    heards.set(id, onHeard);
    worker.postMessage({ type: 'start', id, job, source } satisfies ToWorker);
    return {
      end: (outcome, error) => {
        if (ends.has(id)) worker.postMessage({ type: 'end', id, outcome, error } satisfies ToWorker);
      },
    };
  }

  /** Ends every transfer (each reports how it ended), waits for their files to close, then ends the threads. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#members.map(async (member) => {
        if (member.alive) {
          const stopped = new Promise<void>((resolve) => {
            member.stopped = resolve;
          });
          member.worker.postMessage({ type: 'stop' } satisfies ToWorker);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([stopped, new Promise((resolve) => (timer = setTimeout(resolve, stopWaitMs)))]);
          clearTimeout(timer);
        }
        await member.worker.terminate();
        this.#lost(member);
      }),
    );
  }
}
