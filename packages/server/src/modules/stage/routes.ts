import { StageRequest, StageResult } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { StageService } from './service.ts';

export function stageRoutes(app: App, stage: StageService): void {
  app.post('/api/v1/stage', {
    config: { action: 'machine.stage' },
    schema: {
      tags: ['stage'],
      summary: "Stage a machine's identity into an image: its profile, secret and account; answers its files",
      description:
        'The answer holds the machine secret in the rendered files (the operator writes them into the image): it is the one place the secret leaves the server. A failed account hook stages nothing (502 hook_failed).',
      body: StageRequest,
      response: { 200: StageResult },
    },
    handler: async (request, reply) => {
      const result = await stage.stage(request.principal.actor, request.body);
      return reply.header('cache-control', 'no-store').send(result);
    },
  });
}
