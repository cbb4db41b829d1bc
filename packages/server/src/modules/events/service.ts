import type { Event, EventQuery, PageResult } from '@muster/contract';
import { eventFromRow } from '../../platform/db/event-store.ts';
import { decodeCursor, defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { resolveMachine } from '../machines/service.ts';
import { type EventFilter, eventRows, findEventRow } from './store.ts';

export type { EventFilter };

/** A type filter is exact, or a prefix when it ends in a dot (machine.). */
export function matchesEvent(event: Event, filter: EventFilter): boolean {
  if (filter.machineId && event.machine_id !== filter.machineId) return false;
  if (filter.type) return filter.type.endsWith('.') ? event.type.startsWith(filter.type) : event.type === filter.type;
  return true;
}

export class EventService {
  readonly #tx: Transactor;

  constructor(tx: Transactor) {
    this.#tx = tx;
  }

  async resolveFilter(query: { machine?: string; type?: string }): Promise<EventFilter> {
    const machineId = query.machine ? (await resolveMachine(this.#tx.db, query.machine)).id : undefined;
    return { machineId, type: query.type };
  }

  /** Events in the order they happened, oldest first. */
  async list(query: EventQuery): Promise<PageResult<Event>> {
    const filter = await this.resolveFilter(query);
    const limit = query.limit ?? defaultPageSize;
    return this.page(filter, query.cursor ? Number(decodeCursor(query.cursor, 1)[0]) : (query.after ?? 0), limit);
  }

  async page(filter: EventFilter, afterId: number, limit: number): Promise<PageResult<Event>> {
    return finishPage(await eventRows(this.#tx.db, filter, afterId, limit), limit, (r) => [r.id], eventFromRow);
  }

  async byId(id: number): Promise<Event | null> {
    const row = await findEventRow(this.#tx.db, id);
    return row ? eventFromRow(row) : null;
  }
}
