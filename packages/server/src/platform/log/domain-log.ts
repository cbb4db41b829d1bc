import type { Event } from '@muster/contract';
import type { FastifyBaseLogger } from 'fastify';

interface SessionTally {
  machineId: string | null;
  doors: Set<string>;
  client: string;
  startedAt: number;
  lastAt: number;
  files: number;
  bytes: number;
  errors: number;
}

export interface DomainLogOptions {
  /** A boot session with no request for this long has ended, as far as the log is concerned. */
  quietMs?: number;
  sweepMs?: number;
  /** Sessions followed at once; past it the oldest is reported early. */
  maxSessions?: number;
  now?: () => number;
}

const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
const num = (value: unknown) => (typeof value === 'number' ? value : 0);

/**
 * One info line for each domain event an operator wants to see go by (a machine discovered, enrolled or
 * moved, a build finished), and one line per boot session once it has gone quiet, with its files, bytes and
 * errors, instead of a line per boot request. It hears only what this process committed.
 */
export class DomainLog {
  readonly #log: FastifyBaseLogger;
  readonly #sessions = new Map<string, SessionTally>();
  readonly #quietMs: number;
  readonly #maxSessions: number;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;

  constructor(log: FastifyBaseLogger, options: DomainLogOptions = {}) {
    this.#log = log;
    this.#quietMs = options.quietMs ?? 60_000;
    this.#maxSessions = options.maxSessions ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => this.sweep(), options.sweepMs ?? 15_000);
    this.#timer.unref();
  }

  observe(events: readonly Event[]): void {
    for (const event of events) this.#line(event);
  }

  #line(event: Event): void {
    const data = event.data as Record<string, unknown>;
    const machine = event.machine_id;
    switch (event.type) {
      case 'machine.discovered':
        return this.#log.info({ machine, door: data.door, client: data.client, rule: data.rule ?? null }, 'machine discovered');
      case 'machine.enrolled':
        return this.#log.info({ machine, source: data.source }, data.created ? 'machine enrolled' : 'machine enrolled again');
      case 'machine.created':
        return this.#log.info({ machine, actor: event.actor }, 'machine added');
      case 'machine.state_changed':
        return this.#log.info(
          { machine, from: data.from, to: data.to, actor: event.actor, reason: event.reason || undefined },
          'machine state changed',
        );
      case 'machine.identifier_conflict':
        return this.#log.warn({ machine, reason: event.reason }, 'identifiers name two machines');
      case 'job.succeeded':
      case 'job.failed':
        if (data.job_type !== 'build') return;
        if (event.type === 'job.succeeded') return this.#log.info({ machine, job: data.job_id, result: 'succeeded' }, 'build finished');
        return this.#log.warn({ machine, job: data.job_id, result: 'failed', reason: event.reason }, 'build finished');
      case 'boot.request':
        return this.#tally(event, data);
    }
  }

  #tally(event: Event, data: Record<string, unknown>): void {
    const id = str(data.session_id);
    if (!id) return;
    const at = this.#now();
    let session = this.#sessions.get(id);
    if (!session) {
      if (this.#sessions.size >= this.#maxSessions) this.#end(this.#sessions.keys().next().value as string);
      session = {
        machineId: event.machine_id,
        doors: new Set(),
        client: str(data.client) ?? '',
        startedAt: at,
        lastAt: at,
        files: 0,
        bytes: 0,
        errors: 0,
      };
      this.#sessions.set(id, session);
    }
    session.lastAt = at;
    session.doors.add(str(data.door) ?? 'unknown');
    session.files++;
    session.bytes += num(data.bytes);
    if (data.status !== 'ok') session.errors++;
  }

  #end(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    this.#log.info(
      {
        machine: session.machineId,
        session: id,
        doors: [...session.doors],
        client: session.client,
        files: session.files,
        bytes: session.bytes,
        errors: session.errors,
        seconds: Math.round((session.lastAt - session.startedAt) / 100) / 10,
      },
      'boot session ended',
    );
  }

  /** Reports the sessions that have gone quiet. */
  sweep(): void {
    const quietSince = this.#now() - this.#quietMs;
    for (const [id, session] of this.#sessions) if (session.lastAt <= quietSince) this.#end(id);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
