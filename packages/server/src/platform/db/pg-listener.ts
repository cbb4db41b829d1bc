import type { Event } from '@muster/contract';
import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';
import { pgTypes } from './connect.ts';
import { eventFromRow } from './event-store.ts';

export interface PgListenerOptions {
  url: string;
  channels: Record<string, (payload: string) => void>;
  log: FastifyBaseLogger;
}

/** One dedicated connection that LISTENs on muster's channels and reconnects when it drops. */
export class PgListener {
  #client: pg.Client | null = null;
  #stopped = false;
  #retry: NodeJS.Timeout | null = null;
  readonly #options: PgListenerOptions;

  constructor(options: PgListenerOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#options.url, types: pgTypes() });
    client.on('error', (error) => this.#reconnect(error));
    client.on('end', () => this.#reconnect(new Error('connection ended')));
    client.on('notification', (message) => this.#options.channels[message.channel]?.(message.payload ?? ''));
    await client.connect();
    for (const channel of Object.keys(this.#options.channels)) await client.query(`LISTEN ${channel}`);
    this.#client = client;
  }

  #reconnect(error: Error): void {
    if (this.#stopped || this.#retry) return;
    this.#options.log.warn({ err: error.message }, 'event listener lost its database connection; reconnecting');
    this.#client?.removeAllListeners();
    this.#client = null;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.start().catch((e: Error) => this.#reconnect(e));
    }, 1000);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = null;
    client?.removeAllListeners();
    await client?.end().catch(() => {});
  }
}

/** Decodes an event notification: the whole row, or only its id when it was too large. */
export function decodeEventPayload(payload: string): Event | { id: number } {
  const row = JSON.parse(payload);
  return row.type === undefined ? { id: Number(row.id) } : eventFromRow(row);
}
