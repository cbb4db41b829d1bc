import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from '../metrics/metrics.ts';

// Health checks and scrapes arrive every few seconds; their access lines would drown the rest.
const probeRoutes = new Set(['/healthz', '/readyz', '/metrics', '/api/v1/metrics']);

/** One access line per request, with the route and the actor (probes at debug), and its duration as a metric. */
export const accessLog = fp<{ metrics: Metrics }>(
  async (app: FastifyInstance, { metrics }) => {
    app.decorate('metrics', metrics);
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.httpDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000);
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
  },
  { name: 'muster-access-log', dependencies: ['muster-auth'] },
);
