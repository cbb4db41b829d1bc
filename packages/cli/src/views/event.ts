import type { Event } from '@muster/contract';
import { formatTime, renderTable } from '../output.ts';

const maxSummaryWidth = 80;

/** The event's data as `key=value` pairs, cut to one readable line. */
export function eventSummary(data: Event['data']): string {
  const text = Object.entries(data ?? {})
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return text.length > maxSummaryWidth ? `${text.slice(0, maxSummaryWidth - 1)}…` : text;
}

export function eventTable(events: readonly Event[]): string {
  return renderTable(
    ['ID', 'TIME', 'TYPE', 'ACTOR', 'REASON', 'DATA'],
    events.map((e) => [e.id, formatTime(e.created_at), e.type, e.actor, e.reason, eventSummary(e.data)]),
  );
}

/** One event as one line, for a stream where the widest value is not known in advance. */
export function eventLine(e: Event): string {
  const text = [formatTime(e.created_at), e.type.padEnd(26), e.actor.padEnd(18), e.reason ? `${e.reason}:` : '', eventSummary(e.data)];
  return text
    .filter((part) => part !== '')
    .join('  ')
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trimEnd();
}
