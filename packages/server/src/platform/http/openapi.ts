import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

// OpenAPI 3.1's mutualTLS scheme, which the swagger plugin's 3.0 types do not know.
const mutualTls = {
  type: 'mutualTLS',
  description: 'A device certificate from muster’s CA, presented on the --tls-listen port',
} as unknown as { type: 'http'; scheme: string };

/** The OpenAPI document (/api/v1/openapi.json serves it) built from the routes' schemas, and its page at /api/docs. */
export const openapi = fp<{ version: string }>(
  async (app: FastifyInstance, { version }) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'muster API',
          version,
          description: 'Zero-touch provisioning server. Errors are RFC 9457 problem+json with a stable code.',
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'A session JWT from POST /api/v1/login, or an API token (mst_…)' },
            deviceCertificate: mutualTls,
          },
        },
        security: [{ bearer: [] }],
      },
    });
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/api/docs')) route.config = { ...route.config, action: 'public' };
    });
    await app.register(swaggerUi, { routePrefix: '/api/docs', uiConfig: { url: '/api/v1/openapi.json' } as never });
  },
  { name: 'muster-openapi' },
);
