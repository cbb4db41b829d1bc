import { Worker } from 'node:worker_threads';
import { MusterError } from '@muster/contract';
import { timeoutDetail } from './engine.ts';

/** One template to render, with a context of plain data (it is copied to the render thread). */
export interface RenderJob {
  name: string;
  source: string;
  context: Record<string, unknown>;
}

export type ToRenderThread = RenderJob & { id: number; limitMs: number };
export type FromRenderThread =
  | { type: 'ready' }
  | { type: 'done'; id: number; bytes: Uint8Array }
  | { type: 'failed'; id: number; code: 'render_timeout' | 'validation_failed' | 'payload_too_large'; detail: string };

export interface RenderLimits {
  /** Render threads at most. */
  threads: number;
  /** The longest a render may take on its thread, in ms; then the thread is ended and replaced. */
  timeoutMs: number;
  /** Renders that may wait for a free thread; one more is refused at once. */
  maxQueued: number;
}

/** What the pool holds now, and what it has done since it started (for metrics). */
export interface RenderStats {
  queued: number;
  running: number;
  threads: number;
  rendered: number;
  failed: number;
  timedOut: number;
  refused: number;
}

interface Pending {
  id: number;
  job: RenderJob;
  resolve: (bytes: Buffer) => void;
  reject: (error: Error) => void;
}

interface Member {
  worker: Worker;
  ready: boolean;
  job: Pending | null;
  timer: NodeJS.Timeout | undefined;
  error: Error | null;
}

// From source the thread runs worker.ts beside this file; in the compiled package, dist/render-worker.js beside it.
const workerUrl = import.meta.url.endsWith('.ts')
  ? new URL('./worker.ts', import.meta.url)
  : new URL('./render-worker.js', import.meta.url);

/**
 * Liquid's own limit stops most long renders inside the thread, which then goes on serving; a render it cannot
 * stop (one long filter call) has its thread ended this long after the time limit.
 */
const hardStopGraceMs = 100;

/**
 * Threads that render templates off the event loop, so that an operator's slow template never holds up
 * the server: each render has a time limit after which its thread is ended and replaced, and at most
 * `maxQueued` renders wait for a thread; more are refused at once. Idle threads hold no process open.
 */
export class RenderPool {
  #limits: RenderLimits;
  readonly #members = new Set<Member>();
  readonly #queue: Pending[] = [];
  readonly #counts = { rendered: 0, failed: 0, timedOut: 0, refused: 0 };
  #nextId = 1;
  #closed = false;

  constructor(limits: RenderLimits) {
    this.#limits = { ...limits };
  }

  /** New limits; they apply to renders that start from now on. */
  configure(limits: RenderLimits): void {
    this.#limits = { ...limits };
    this.#dispatch();
  }

  render(job: RenderJob): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new MusterError('unavailable', 'The server is stopping; templates are not rendered'));
    return new Promise<Buffer>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, job, resolve, reject });
      this.#dispatch();
      if (this.#queue.length <= this.#limits.maxQueued) return;
      this.#queue.pop();
      this.#counts.refused++;
      reject(
        new MusterError('render_busy', `More than ${this.#limits.maxQueued} templates are waiting to render; retry in a second`, {
          extra: { retry_after: 1 },
        }),
      );
    });
  }

  stats(): RenderStats {
    let running = 0;
    for (const member of this.#members) if (member.job) running++;
    return { queued: this.#queue.length, running, threads: this.#members.size, ...this.#counts };
  }

  /** Ends every thread; renders still waiting or running fail as unavailable. */
  async close(): Promise<void> {
    this.#closed = true;
    const stopping = new MusterError('unavailable', 'The server is stopping; templates are not rendered');
    for (const pending of this.#queue.splice(0)) pending.reject(stopping);
    const members = [...this.#members];
    this.#members.clear();
    await Promise.all(
      members.map((member) => {
        clearTimeout(member.timer);
        member.job?.reject(stopping);
        member.job = null;
        return member.worker.terminate();
      }),
    );
  }

  #dispatch(): void {
    for (const member of this.#members) {
      if (this.#queue.length === 0) break;
      if (member.ready && !member.job) this.#start(member, this.#queue.shift() as Pending);
    }
    let starting = 0;
    for (const member of this.#members) if (!member.ready) starting++;
    const wanted = Math.min(this.#limits.threads - this.#members.size, this.#queue.length - starting);
    for (let i = 0; i < wanted; i++) this.#spawn();
    for (const member of this.#members) {
      if (this.#members.size <= this.#limits.threads) break;
      if (member.ready && !member.job) this.#end(member);
    }
  }

  #spawn(): void {
    const worker = new Worker(workerUrl, { name: 'templates', resourceLimits: { maxOldGenerationSizeMb: 128 } });
    const member: Member = { worker, ready: false, job: null, timer: undefined, error: null };
    this.#members.add(member);
    worker.on('message', (message: FromRenderThread) => this.#heard(member, message));
    worker.on('error', (error) => {
      member.error = error;
    });
    worker.on('exit', () => this.#lost(member));
  }

  #heard(member: Member, message: FromRenderThread): void {
    if (message.type === 'ready') {
      member.ready = true;
      member.worker.unref();
      return this.#dispatch();
    }
    const pending = member.job;
    if (!pending || pending.id !== message.id) return;
    clearTimeout(member.timer);
    member.job = null;
    member.worker.unref();
    if (message.type === 'done') {
      this.#counts.rendered++;
      pending.resolve(Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength));
    } else {
      if (message.code === 'render_timeout') this.#counts.timedOut++;
      else this.#counts.failed++;
      pending.reject(new MusterError(message.code, message.detail));
    }
    this.#dispatch();
  }

  #start(member: Member, pending: Pending): void {
    const { timeoutMs } = this.#limits;
    member.job = pending;
    member.worker.ref();
    try {
      member.worker.postMessage({ ...pending.job, id: pending.id, limitMs: timeoutMs } satisfies ToRenderThread);
    } catch (error) {
      member.job = null;
      member.worker.unref();
      this.#counts.failed++;
      pending.reject(
        new MusterError(
          'validation_failed',
          `Template ${pending.job.name} has a context that is not plain data: ${(error as Error).message}`,
        ),
      );
      return;
    }
    member.timer = setTimeout(() => {
      this.#counts.timedOut++;
      member.job = null;
      this.#end(member);
      pending.reject(new MusterError('render_timeout', timeoutDetail(pending.job.name, timeoutMs)));
      this.#dispatch();
    }, timeoutMs + hardStopGraceMs);
  }

  #end(member: Member): void {
    this.#members.delete(member);
    clearTimeout(member.timer);
    void member.worker.terminate();
  }

  /** A thread that exited on its own: its render fails; one that never started fails every waiting render. */
  #lost(member: Member): void {
    if (!this.#members.delete(member)) return;
    clearTimeout(member.timer);
    const reason = member.error?.message ?? 'the render thread exited';
    if (member.job) {
      this.#counts.failed++;
      member.job.reject(new MusterError('validation_failed', `Template ${member.job.job.name} stopped its render thread: ${reason}`));
      member.job = null;
    }
    if (!member.ready) {
      for (const pending of this.#queue.splice(0)) pending.reject(new MusterError('internal', `No render thread starts: ${reason}`));
    }
    this.#dispatch();
  }
}
