import { ApiToken, ApiTokenCreate, ApiTokenCreated, IdParam, Page, PageQuery } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { TokenService } from './service.ts';

const tags = ['tokens'];

export function tokenRoutes(app: App, tokens: TokenService): void {
  app.post('/api/v1/tokens', {
    config: { action: 'account.write' },
    schema: {
      tags,
      summary: 'Create an API token (the secret is shown once; role at most yours)',
      body: ApiTokenCreate,
      response: { 201: ApiTokenCreated },
    },
    handler: async (request, reply) => reply.status(201).send(await tokens.create(request.principal, request.body)),
  });
  app.get('/api/v1/tokens', {
    config: { action: 'account.read' },
    schema: {
      tags,
      summary: 'List your API tokens (admins: all)',
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: { 200: Page(ApiToken) },
    },
    handler: (request) => tokens.list(request.principal, request.query.cursor, request.query.limit),
  });
  app.delete('/api/v1/tokens/:id', {
    config: { action: 'account.write' },
    schema: { tags, summary: 'Revoke an API token', params: IdParam, response: { 200: ApiToken } },
    handler: (request) => tokens.revoke(request.principal, request.params.id),
  });
}
