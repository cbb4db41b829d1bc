import type { Event, EventQuery, PageResult } from '@muster/contract';
import { decodeCursor, defaultPageSize, finishPage } from '../../platform/db/page.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { eventFromRow } from '../../platform/events/record.ts';
import { resolveMachine } from '../machines/service.ts';

export interface EventFilter {
  machineId?: string;
  type?: string;
}

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
    let q = this.#tx.db
      .selectFrom('events')
      .selectAll()
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit + 1);
    if (filter.machineId) q = q.where('machine_id', '=', filter.machineId);
    if (filter.type)
      q = filter.type.endsWith('.')
        ? q.where('type', 'like', `${filter.type.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
        : q.where('type', '=', filter.type);
    return finishPage(await q.execute(), limit, (r) => [r.id], eventFromRow);
  }

  async byId(id: number): Promise<Event | null> {
    const row = await this.#tx.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? eventFromRow(row) : null;
  }
}
