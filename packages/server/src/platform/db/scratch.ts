import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '@muster/contract';
import { type Db, openDatabase } from './connect.ts';
import { EventBus } from './event-bus.ts';
import { migrateToLatest } from './migrations.ts';
import { Transactor } from './transact.ts';

export interface Scratch {
  db: Db;
  tx: Transactor;
  /** Every event committed so far, oldest first. */
  events: Event[];
  close(): Promise<void>;
}

/**
 * A migrated SQLite database of its own in a temporary directory, with a Transactor and the events it
 * publishes: what the services' unit tests run against, stores and all, without a server.
 */
export async function scratchDatabase(): Promise<Scratch> {
  const dir = mkdtempSync(join(tmpdir(), 'muster-scratch-'));
  const db = openDatabase({ dialect: 'sqlite', path: join(dir, 'muster.db') });
  await migrateToLatest(db.kysely, db.dialect);
  const bus = new EventBus();
  const events: Event[] = [];
  bus.subscribe((event) => events.push(event));
  return {
    db,
    tx: new Transactor(db, bus),
    events,
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
