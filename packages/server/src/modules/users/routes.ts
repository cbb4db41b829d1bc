import { IdParam, Page, PageQuery, User, UserCreate, UserUpdate } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { UserService } from './service.ts';

const tags = ['users'];

export function userRoutes(app: App, users: UserService): void {
  app.get('/api/v1/users', {
    config: { action: 'user.read' },
    schema: {
      tags,
      summary: 'List users (admin)',
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: { 200: Page(User) },
    },
    handler: (request) => users.list(request.query.cursor, request.query.limit, request.query.total),
  });
  app.post('/api/v1/users', {
    config: { action: 'user.write' },
    schema: { tags, summary: 'Create a user (admin)', body: UserCreate, response: { 201: User } },
    handler: async (request, reply) => reply.status(201).send(await users.create(request.principal.actor, request.body)),
  });
  app.get('/api/v1/users/:id', {
    config: { action: 'account.read' },
    schema: { tags, summary: 'Get a user by id or username (admin, or yourself)', params: IdParam, response: { 200: User } },
    handler: (request) => users.get(request.principal, request.params.id),
  });
  app.put('/api/v1/users/:id', {
    config: { action: 'account.write' },
    schema: {
      tags,
      summary: 'Update a user (admin); anyone may change their own password with current_password',
      params: IdParam,
      body: UserUpdate,
      response: { 200: User },
    },
    handler: (request) => users.update(request.principal, request.params.id, request.body),
  });
  app.delete('/api/v1/users/:id', {
    config: { action: 'user.write' },
    schema: { tags, summary: 'Delete a user (admin); the last admin stays', params: IdParam },
    handler: async (request, reply) => {
      await users.delete(request.principal, request.params.id);
      return reply.status(204).send();
    },
  });
}
