import { type Event, EventQuery, Event as EventSchema, IdParam, Page, PageQuery } from '@muster/contract';
import { Type } from 'typebox';
import type { EventBus } from '../../platform/db/event-bus.ts';
import type { App } from '../../platform/http/types.ts';
import { type EventService, matchesEvent } from './service.ts';

const tags = ['events'];
const heartbeatMs = 15_000;
const maxReplay = 10_000;

export function eventRoutes(app: App, events: EventService, bus: EventBus): void {
  app.get('/api/v1/machines/:id/events', {
    config: { action: 'machine.read' },
    schema: {
      tags: ['machines'],
      summary: "A machine's event history, oldest first",
      params: IdParam,
      querystring: Type.Object({ ...PageQuery, type: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false }),
      response: { 200: Page(EventSchema) },
    },
    handler: (request) => events.list({ ...request.query, machine: request.params.id }),
  });

  app.get('/api/v1/events', {
    config: { action: 'event.read' },
    schema: {
      tags,
      summary: 'The event log (audit), oldest first; filter by machine and type',
      querystring: EventQuery,
      response: { 200: Page(EventSchema) },
    },
    handler: (request) => events.list(request.query),
  });

  app.get('/api/v1/events/stream', {
    config: { action: 'event.read' },
    schema: {
      tags,
      summary: 'Server-sent events as they happen; resumes after Last-Event-ID (or ?after=)',
      querystring: Type.Object(
        {
          machine: Type.Optional(Type.String({ maxLength: 200 })),
          type: Type.Optional(Type.String({ maxLength: 100, description: 'Exact type, or a prefix ending in . (machine.)' })),
          after: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })) }),
    },
    handler: async (request, reply) => {
      const filter = await events.resolveFilter(request.query);
      const resumeFrom = request.headers['last-event-id'] ?? request.query.after;
      let lastSent = resumeFrom === undefined ? null : Number(resumeFrom);
      let replaying = lastSent !== null;
      const held: Event[] = [];
      const raw = reply.raw;
      const send = (event: Event) => {
        if (lastSent !== null && event.id <= lastSent) return;
        raw.write(`id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`);
        lastSent = event.id;
      };
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      raw.write('retry: 2000\n: connected\n\n');
      // Subscribe before replaying, holding live events back, so nothing falls between the two.
      const unsubscribe = bus.subscribe((event) => {
        if (!matchesEvent(event, filter)) return;
        if (replaying) held.push(event);
        else send(event);
      });
      const heartbeat = setInterval(() => raw.write(': ping\n\n'), heartbeatMs);
      const close = () => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      request.raw.on('close', close);
      if (replaying) {
        let after = lastSent ?? 0;
        for (let replayed = 0; replayed < maxReplay; ) {
          const page = await events.page(filter, after, 500);
          for (const event of page.items) send(event);
          replayed += page.items.length;
          if (!page.next_cursor) break;
          after = page.items.at(-1)?.id ?? after;
        }
        replaying = false;
        for (const event of held) send(event);
      }
    },
  });
}
