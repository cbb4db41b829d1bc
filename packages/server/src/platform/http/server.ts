import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { MusterError } from '@muster/contract';
import Fastify, { type FastifyBaseLogger, type FastifyRequest, LogController } from 'fastify';
import type { Principal } from '../auth/policy.ts';
import { authorize } from '../auth/policy.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { illFormedString, routerProblem, sendProblem, toMusterError } from './problem.ts';
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

const surrogateEscape = /\\u[dD][89a-fA-F]/;

// Health checks and scrapes arrive every few seconds; their access lines would drown the rest.
const probeRoutes = new Set(['/healthz', '/readyz', '/metrics', '/api/v1/metrics']);

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

function bearerOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new MusterError('unauthenticated', 'The Authorization header must be "Bearer <token>"');
  return match[1];
}

export async function createHttpServer(options: HttpOptions): Promise<App> {
  const app = Fastify({
    loggerInstance: options.logger,
    // One access line per request comes from the onResponse hook below, with the route and the actor.
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

  // Handlers can outlive their connection (the client left); shutdown waits for them before the
  // database closes under them.
  let running = 0;
  let whenIdle: (() => void) | null = null;
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = async function (this: unknown, request, reply) {
      running++;
      try {
        return await handler.call(this as never, request, reply);
      } finally {
        if (--running === 0) whenIdle?.();
      }
    };
  });
  app.decorate('handlersRunning', () => running);
  app.decorate('metrics', options.metrics);
  app.decorate('handlersDone', (timeoutMs: number) =>
    running === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          whenIdle = resolve;
          setTimeout(resolve, timeoutMs).unref();
        }),
  );

  app.setValidatorCompiler(validatorCompiler);
  // Many clients send a JSON content type with an empty body on POSTs that take none (build, cancel).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    parseJson(request, body as string, (error, parsed) => {
      if (error) return done(error, undefined);
      // A lone surrogate (\ud800) is valid JSON but no valid text: stored, it breaks unique indexes and strict readers.
      // Only an escape can make one (UTF-8 decoding cannot), so bodies without a surrogate escape are not walked.
      const at = surrogateEscape.test(body as string) ? illFormedString(parsed) : null;
      if (at !== null)
        return done(
          new MusterError('validation_failed', `The request body is not valid: ${at} holds a lone UTF-16 surrogate`, {
            errors: [{ path: at, message: 'holds a lone UTF-16 surrogate, which is not text' }],
          }),
          undefined,
        );
      done(null, parsed);
    });
  });
  app.decorateRequest('principal', null as unknown as Principal);

  app.setErrorHandler((error, request, reply) => {
    const problem = toMusterError(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(request, reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new MusterError('not_found', `No route ${request.method} ${request.url.split('?')[0]}; see /api/docs`)),
  );

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

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    options.metrics.httpDuration.observe({ method: request.method, route, status_code: reply.statusCode }, seconds);
    request.log[probeRoutes.has(route) && reply.statusCode < 400 ? 'debug' : 'info'](
      {
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        actor: request.principal?.actor,
      },
      'request',
    );
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'muster API',
        version: options.version,
        description: 'Zero-touch provisioning server. Errors are RFC 9457 problem+json with a stable code.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A session JWT from POST /api/v1/login, or an API token (mst_…)' },
        },
      },
      security: [{ bearer: [] }],
    },
  });
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/docs')) route.config = { ...route.config, action: 'public' };
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs', uiConfig: { url: '/api/v1/openapi.json' } as never });
  return app;
}
