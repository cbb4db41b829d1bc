import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Counts running route handlers. Handlers can outlive their connection (the client left); shutdown waits for
 * them (`handlersDone`) before the database closes under them.
 */
export const drain = fp(
  async (app: FastifyInstance) => {
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
    app.decorate('handlersDone', (timeoutMs: number) =>
      running === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            whenIdle = resolve;
            setTimeout(resolve, timeoutMs).unref();
          }),
    );
  },
  { name: 'muster-drain' },
);
