import { IdParam, Job } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { BuildService } from './service.ts';

const tags = ['machines'];

export function buildRoutes(app: App, builds: BuildService): void {
  app.post('/api/v1/machines/:id/build', {
    config: { action: 'machine.build' },
    schema: {
      tags,
      summary: 'Build the machine: building now, ready or failed when the build job ends',
      params: IdParam,
      response: { 202: Job },
    },
    handler: async (request, reply) => reply.status(202).send(await builds.start(request.principal.actor, request.params.id)),
  });
}
