import { IdentifierAdd, IdParam, Machine, MachineCreate, MachineListQuery, MachineUpdate, Page, TransitionRequest } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { MachineService } from './service.ts';

const tags = ['machines'];

export function machineRoutes(app: App, machines: MachineService): void {
  app.get('/api/v1/machines', {
    config: { action: 'machine.read' },
    schema: {
      tags,
      summary: 'List machines (filter, sort, cursor pages)',
      querystring: MachineListQuery,
      response: { 200: Page(Machine) },
    },
    handler: (request) => machines.list(request.query),
  });

  app.post('/api/v1/machines', {
    config: { action: 'machine.write' },
    schema: { tags, summary: 'Register a machine by hand, as enrolled', body: MachineCreate, response: { 201: Machine } },
    handler: async (request, reply) => reply.status(201).send(await machines.create(request.principal.actor, request.body)),
  });

  app.get('/api/v1/machines/:id', {
    config: { action: 'machine.read' },
    schema: { tags, summary: 'Get a machine by id or identifier (serial:ABC123)', params: IdParam, response: { 200: Machine } },
    handler: (request) => machines.get(request.params.id),
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route({
      method,
      url: '/api/v1/machines/:id',
      config: { action: 'machine.write' },
      schema: {
        tags,
        summary: 'Update a machine (fields given are changed; a config makes an enrolled machine configured)',
        params: IdParam,
        body: MachineUpdate,
        response: { 200: Machine },
      },
      handler: (request) => machines.update(request.principal.actor, request.params.id, request.body),
    });
  }

  app.post('/api/v1/machines/:id/transition', {
    config: { action: 'machine.write' },
    schema: {
      tags,
      summary: 'Move a machine to another lifecycle state',
      params: IdParam,
      body: TransitionRequest,
      response: { 200: Machine },
    },
    handler: (request) => machines.transition(request.principal.actor, request.params.id, request.body.to, request.body.reason),
  });

  app.post('/api/v1/machines/:id/identifiers', {
    config: { action: 'machine.write' },
    schema: { tags, summary: 'Add an identifier to a machine', params: IdParam, body: IdentifierAdd, response: { 200: Machine } },
    handler: (request) => machines.addIdentifier(request.principal.actor, request.params.id, request.body),
  });
}
