import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Principal, RouteAction } from '../auth/policy.ts';
import type { Metrics } from '../metrics/metrics.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyInstance {
    /** Resolves once no route handler runs (or after `timeoutMs`); used before the database closes. */
    handlersDone(timeoutMs: number): Promise<void>;
    /** Route handlers running now. */
    handlersRunning(): number;
    /** Metrics of the server: routes count what they serve into them. */
    metrics: Metrics;
  }
  interface FastifyContextConfig {
    /** The policy action a route needs, or 'public'. Every route must name one. */
    action?: RouteAction;
  }
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
