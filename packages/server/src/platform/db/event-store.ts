import type { Event } from '@muster/contract';
import { type Kysely, sql } from 'kysely';
import { now } from '../crypto/ids.ts';
import { executeByShape } from './compiled.ts';
import type { Dialect } from './connect.ts';
import type { Database, EventRow } from './schema.ts';

export const eventChannel = 'muster_events';
// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; larger events travel as their id.
const notifyLimit = 7900;

export interface NewEvent {
  type: string;
  machineId?: string | null;
  actor: string;
  reason?: string;
  data?: Record<string, unknown>;
}

export function eventFromRow(row: Omit<EventRow, 'id'> & { id: number }): Event {
  return {
    id: Number(row.id),
    type: row.type,
    machine_id: row.machine_id,
    actor: row.actor,
    reason: row.reason,
    data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
    created_at: row.created_at,
  };
}

/** Appends an event inside the caller's transaction; on PostgreSQL the NOTIFY is sent on commit only. */
/** The row of an event, as inserted. */
export function eventValues(input: NewEvent) {
  return {
    type: input.type,
    machine_id: input.machineId ?? null,
    actor: input.actor,
    reason: input.reason ?? '',
    data: JSON.stringify(input.data ?? {}),
    created_at: now(),
  };
}

/** PostgreSQL: notifies listeners of the inserted event row `e` (its id alone when too large for NOTIFY). */
export const notifyEvent = sql`pg_notify(${eventChannel}, case when octet_length(row_to_json(e)::text) < ${notifyLimit}
  then row_to_json(e)::text else json_build_object('id', e.id)::text end)`;

export async function insertEvent(trx: Kysely<Database>, dialect: Dialect, input: NewEvent): Promise<Event> {
  const values = eventValues(input);
  if (dialect === 'sqlite') {
    const { insertId } = await executeByShape(trx, 'event', () => trx.insertInto('events').values(values), [
      values.type,
      values.machine_id,
      values.actor,
      values.reason,
      values.data,
      values.created_at,
    ]);
    return { ...values, id: Number(insertId), data: input.data ?? {} };
  }
  const { rows } = await sql<EventRow & { id: number }>`
    with e as (
      insert into events (type, machine_id, actor, reason, data, created_at)
      values (${values.type}, ${values.machine_id}, ${values.actor}, ${values.reason}, ${values.data}, ${values.created_at})
      returning *
    )
    select e.*, ${notifyEvent} from e`.execute(trx);
  return eventFromRow(rows[0]);
}
