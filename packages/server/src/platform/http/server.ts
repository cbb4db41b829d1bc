import { randomUUID } from 'node:crypto';
import { MusterError } from '@muster/contract';
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify';
import type { Principal } from '../auth/policy.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { accessLog } from './access-log.ts';
import { auth } from './auth.ts';
import { drain } from './drain.ts';
import { jsonBodies } from './json.ts';
import { openapi } from './openapi.ts';
import { routerProblem, sendProblem, toMusterError } from './problem.ts';
import type { App } from './types.ts';
import { lazySerializers, validatorCompiler } from './validation.ts';

export interface HttpOptions {
  logger: FastifyBaseLogger;
  metrics: Metrics;
  /** Resolves the Authorization header to a principal; null when authentication is turned off. */
  authenticate: ((bearer: string) => Promise<Principal>) | null;
  localPrincipal: Principal;
  version: string;
  /** Peers whose X-Forwarded-For is believed (request.ip is then the rightmost untrusted hop); none by default. */
  trustProxy?: string[];
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The HTTP server every route is added to: Fastify with muster's plugins (drain, JSON bodies, auth, the access
 * log, OpenAPI), validation, and problem+json for every error, the router's own included.
 */
export async function createHttpServer(options: HttpOptions): Promise<App> {
  const app = Fastify({
    loggerInstance: options.logger,
    // One access line per request comes from the access-log plugin, with the route and the actor.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    forceCloseConnections: true,
    trustProxy: options.trustProxy?.length ? options.trustProxy : false,
    frameworkErrors: (error, request, reply) => sendProblem(request, reply, routerProblem(error, request.url)),
    schemaController: { compilersFactory: { buildSerializer: lazySerializers } },
  }).withTypeProvider() as unknown as App;

  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler((error, request, reply) => {
    const problem = toMusterError(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(request, reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new MusterError('not_found', `No route ${request.method} ${request.url.split('?')[0]}; see /api/docs`)),
  );
  await app.register(drain);
  await app.register(jsonBodies);
  await app.register(auth, { authenticate: options.authenticate, localPrincipal: options.localPrincipal });
  await app.register(accessLog, { metrics: options.metrics });
  await app.register(openapi, { version: options.version });
  return app;
}
