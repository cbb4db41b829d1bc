import { Endpoint, EndpointNameParam, EndpointPut } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { EndpointService } from './service.ts';

const tags = ['endpoints'];

export function endpointRoutes(app: App, endpoints: EndpointService): void {
  app.get('/api/v1/endpoints', {
    config: { action: 'endpoint.read' },
    schema: { tags, summary: 'List the endpoints hooks may call', response: { 200: Type.Object({ items: Type.Array(Endpoint) }) } },
    handler: async () => ({ items: await endpoints.list() }),
  });
  app.get('/api/v1/endpoints/:name', {
    config: { action: 'endpoint.read' },
    schema: { tags, summary: 'Get an endpoint (never its credential)', params: EndpointNameParam, response: { 200: Endpoint } },
    handler: (request) => endpoints.get(request.params.name),
  });
  app.put('/api/v1/endpoints/:name', {
    config: { action: 'endpoint.write' },
    schema: {
      tags,
      summary: 'Create or replace an endpoint; the bearer token is stored sealed',
      params: EndpointNameParam,
      body: EndpointPut,
      response: { 200: Endpoint },
    },
    handler: (request) => endpoints.put(request.principal.actor, request.params.name, request.body),
  });
  app.delete('/api/v1/endpoints/:name', {
    config: { action: 'endpoint.write' },
    schema: { tags, summary: 'Delete an endpoint no current profile version uses', params: EndpointNameParam },
    handler: async (request, reply) => {
      await endpoints.delete(request.principal.actor, request.params.name);
      return reply.status(204).send();
    },
  });
}
