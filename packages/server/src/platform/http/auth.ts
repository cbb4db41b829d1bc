import { MusterError } from '@muster/contract';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { authorize, type Principal } from '../auth/policy.ts';

export interface AuthOptions {
  /** Resolves the Authorization header to a principal; null when authentication is turned off. */
  authenticate: ((bearer: string) => Promise<Principal>) | null;
  /** Who every caller is when authentication is off. */
  localPrincipal: Principal;
}

function bearerOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new MusterError('unauthenticated', 'The Authorization header must be "Bearer <token>"');
  return match[1];
}

/** Every route names a policy action; this finds the caller and checks the action before the handler runs. */
export const auth = fp<AuthOptions>(
  async (app: FastifyInstance, options) => {
    app.decorateRequest('principal', null as unknown as Principal);
    app.addHook('onRequest', async (request, reply) => {
      reply.header('x-request-id', request.id);
      const action = request.routeOptions.config.action;
      if (action === 'public' || request.is404) return;
      if (!action) throw new MusterError('internal', `Route ${request.routeOptions.url} names no policy action`);
      if (!options.authenticate) {
        request.principal = options.localPrincipal;
        return;
      }
      const bearer = bearerOf(request);
      if (!bearer)
        throw new MusterError('unauthenticated', 'Log in first: send "Authorization: Bearer <token>" (POST /api/v1/login gives one)');
      request.principal = await options.authenticate(bearer);
      authorize(request.principal, action);
    });
  },
  { name: 'muster-auth' },
);
