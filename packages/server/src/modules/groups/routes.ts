import { Group, GroupCreate, GroupUpdate, IdParam, Machine, MembershipParams, Page, PageQuery } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { GroupService } from './service.ts';

const tags = ['groups'];
const ListQuery = Type.Object(PageQuery, { additionalProperties: false });

export function groupRoutes(app: App, groups: GroupService): void {
  app.get('/api/v1/groups', {
    config: { action: 'group.read' },
    schema: { tags, summary: 'List groups', querystring: ListQuery, response: { 200: Page(Group) } },
    handler: (request) => groups.list(request.query.cursor, request.query.limit),
  });
  app.post('/api/v1/groups', {
    config: { action: 'group.write' },
    schema: { tags, summary: 'Create a group', body: GroupCreate, response: { 201: Group } },
    handler: async (request, reply) => reply.status(201).send(await groups.create(request.principal.actor, request.body)),
  });
  app.get('/api/v1/groups/:id', {
    config: { action: 'group.read' },
    schema: { tags, summary: 'Get a group by id or name', params: IdParam, response: { 200: Group } },
    handler: (request) => groups.get(request.params.id),
  });
  app.put('/api/v1/groups/:id', {
    config: { action: 'group.write' },
    schema: { tags, summary: 'Update a group', params: IdParam, body: GroupUpdate, response: { 200: Group } },
    handler: (request) => groups.update(request.principal.actor, request.params.id, request.body),
  });
  app.delete('/api/v1/groups/:id', {
    config: { action: 'group.write' },
    schema: { tags, summary: 'Delete a group (its machines stay)', params: IdParam },
    handler: async (request, reply) => {
      await groups.delete(request.principal.actor, request.params.id);
      return reply.status(204).send();
    },
  });
  app.get('/api/v1/groups/:id/machines', {
    config: { action: 'group.read' },
    schema: { tags, summary: "A group's machines", params: IdParam, querystring: ListQuery, response: { 200: Page(Machine) } },
    handler: (request) => groups.machines(request.params.id, request.query.cursor, request.query.limit),
  });
  app.put('/api/v1/groups/:id/machines/:machineId', {
    config: { action: 'group.write' },
    schema: { tags, summary: 'Add a machine to a group (again: no change)', params: MembershipParams, response: { 200: Group } },
    handler: (request) => groups.addMachine(request.principal.actor, request.params.id, request.params.machineId),
  });
  app.delete('/api/v1/groups/:id/machines/:machineId', {
    config: { action: 'group.write' },
    schema: { tags, summary: 'Remove a machine from a group', params: MembershipParams, response: { 200: Group } },
    handler: (request) => groups.removeMachine(request.principal.actor, request.params.id, request.params.machineId),
  });
}
