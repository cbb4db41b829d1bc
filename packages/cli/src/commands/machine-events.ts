import { setTimeout as sleep } from 'node:timers/promises';
import type { Event } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { printNote, printText } from '../output.ts';
import type { Session } from '../session.ts';
import { eventLine } from '../views/event.ts';

const firstRetryMs = 1000;
const lastRetryMs = 10_000;

function printEvent(session: Session, event: Event): void {
  printText(session.json ? JSON.stringify(event) : eventLine(event));
}

function parseEvent(data: string): Event | null {
  try {
    const event = JSON.parse(data) as Event;
    return typeof event?.id === 'number' && typeof event.type === 'string' ? event : null;
  } catch {
    return null;
  }
}

/**
 * Prints the history, then every new event of one machine from the server's event stream until
 * interrupted. A dropped stream is reopened from the last event seen, so nothing is missed or repeated.
 */
export async function followEvents(session: Session, machineId: string, history: readonly Event[]): Promise<never> {
  let lastId = 0;
  for (const event of history) {
    printEvent(session, event);
    lastId = Math.max(lastId, event.id);
  }
  let retryMs = firstRetryMs;
  for (;;) {
    try {
      const stream = session.api.stream('/events/stream', { machine: machineId }, { lastEventId: lastId > 0 ? String(lastId) : undefined });
      for await (const message of stream) {
        retryMs = firstRetryMs;
        const event = parseEvent(message.data);
        if (!event || event.id <= lastId || event.machine_id !== machineId) continue;
        lastId = event.id;
        printEvent(session, event);
      }
    } catch (error) {
      // Refusals (auth, not found) are final; a dropped or unreachable server is worth waiting for.
      if (error instanceof MusterError && error.code !== 'unavailable') throw error;
    }
    printNote(`(event stream from ${session.server} closed; reconnecting in ${retryMs / 1000}s)`);
    await sleep(retryMs);
    retryMs = Math.min(retryMs * 2, lastRetryMs);
  }
}
