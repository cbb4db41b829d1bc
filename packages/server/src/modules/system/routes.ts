import { MusterError } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { Metrics } from '../../platform/metrics/metrics.ts';

export interface Readiness {
  check(): Promise<void>;
}

export function systemRoutes(app: App, metrics: Metrics, readiness: Readiness): void {
  const status = Type.Object({ status: Type.String() });
  app.get('/healthz', {
    config: { action: 'public' },
    schema: { tags: ['system'], summary: 'The process is alive', security: [], response: { 200: status } },
    handler: async () => ({ status: 'ok' }),
  });
  app.get('/readyz', {
    config: { action: 'public' },
    schema: { tags: ['system'], summary: 'The server can serve: database reachable and migrated', security: [], response: { 200: status } },
    handler: async () => {
      try {
        await readiness.check();
      } catch (error) {
        throw new MusterError('unavailable', `Not ready: ${(error as Error).message}`);
      }
      return { status: 'ready' };
    },
  });
  for (const url of ['/metrics', '/api/v1/metrics']) {
    app.get(url, {
      config: { action: 'public' },
      schema: { tags: ['system'], summary: 'Prometheus metrics', security: [] },
      handler: async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    });
  }
  app.get('/api/v1/openapi.json', {
    config: { action: 'public' },
    schema: { tags: ['system'], summary: 'This OpenAPI 3.1 document', security: [] },
    handler: async () => app.swagger(),
  });
}
