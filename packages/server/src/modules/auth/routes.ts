import { LoginRequest, LoginResponse, MusterError, SetupRequest, User } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { FailureLimiter } from './limiter.ts';
import type { AuthService } from './service.ts';

const tags = ['auth'];

export function authRoutes(app: App, auth: AuthService, failures: FailureLimiter, me: (userId: string) => Promise<User>): void {
  app.post('/api/v1/login', {
    config: { action: 'public' },
    schema: { tags, summary: 'Log in; returns a session token (JWT)', security: [], body: LoginRequest, response: { 200: LoginResponse } },
    handler: async (request, reply) => {
      // Failures are counted per source and per username, so neither guessing nor spraying gets far.
      const keys = [`ip:${request.ip}`, `user:${request.body.username.toLowerCase()}`];
      const wait = Math.max(...keys.map((k) => failures.retryAfter(k)));
      if (wait > 0) {
        reply.header('retry-after', String(wait));
        throw new MusterError('rate_limited', `Too many failed logins; try again in ${wait} s`);
      }
      try {
        const session = await auth.login(request.body.username, request.body.password);
        failures.succeed(keys[1]);
        return session;
      } catch (error) {
        for (const key of keys) failures.fail(key);
        throw error;
      }
    },
  });

  app.post('/api/v1/setup', {
    config: { action: 'public' },
    schema: {
      tags,
      summary: 'Create the first admin with the one-time setup code printed at first start',
      security: [],
      body: SetupRequest,
      response: { 201: User },
    },
    handler: async (request, reply) => reply.status(201).send(await auth.completeSetup(request.body)),
  });

  app.get('/api/v1/me', {
    config: { action: 'account.read' },
    schema: { tags, summary: 'The user behind the token', response: { 200: User } },
    handler: (request) => me(request.principal.userId),
  });
}
