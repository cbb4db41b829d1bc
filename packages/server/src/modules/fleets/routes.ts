import { Fleet, FleetCreate, FleetUpdate, IdParam, Page, PageQuery } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { FleetService } from './service.ts';

const tags = ['fleets'];

export function fleetRoutes(app: App, fleets: FleetService): void {
  app.get('/api/v1/fleets', {
    config: { action: 'fleet.read' },
    schema: {
      tags,
      summary: 'List fleets',
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: { 200: Page(Fleet) },
    },
    handler: (request) => fleets.list(request.query.cursor, request.query.limit),
  });
  app.post('/api/v1/fleets', {
    config: { action: 'fleet.write' },
    schema: { tags, summary: 'Create a fleet', body: FleetCreate, response: { 201: Fleet } },
    handler: async (request, reply) => reply.status(201).send(await fleets.create(request.principal.actor, request.body)),
  });
  app.get('/api/v1/fleets/:id', {
    config: { action: 'fleet.read' },
    schema: { tags, summary: 'Get a fleet by id or name', params: IdParam, response: { 200: Fleet } },
    handler: (request) => fleets.get(request.params.id),
  });
  app.put('/api/v1/fleets/:id', {
    config: { action: 'fleet.write' },
    schema: { tags, summary: 'Update a fleet', params: IdParam, body: FleetUpdate, response: { 200: Fleet } },
    handler: (request) => fleets.update(request.principal.actor, request.params.id, request.body),
  });
  app.delete('/api/v1/fleets/:id', {
    config: { action: 'fleet.write' },
    schema: { tags, summary: 'Delete an empty fleet', params: IdParam },
    handler: async (request, reply) => {
      await fleets.delete(request.principal.actor, request.params.id);
      return reply.status(204).send();
    },
  });
}
