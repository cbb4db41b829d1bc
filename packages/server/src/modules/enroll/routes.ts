import { EnrollRequest, Machine, MusterError } from '@muster/contract';
import { limitBySource } from '../../platform/http/limit.ts';
import type { App } from '../../platform/http/types.ts';
import type { SourceLimiter } from '../../platform/limits/limiter.ts';
import type { Metrics } from '../../platform/metrics/metrics.ts';
import type { EnrollService } from './service.ts';

export function enrollRoutes(app: App, enroll: EnrollService, metrics: Metrics, limiter: SourceLimiter): void {
  app.post('/api/v1/enroll', {
    config: { action: 'public' },
    onRequest: limitBySource(limiter, 'enroll'),
    bodyLimit: 128 * 1024,
    schema: {
      tags: ['enrollment'],
      summary: 'Enroll a machine from its registration image (no auth; safe to retry)',
      description:
        '201 when the machine is new, 200 when its identifiers were known. Identifiers of two machines are a 409 and a conflict event. ' +
        '429 with Retry-After when the source or the server-wide budget for new machines is spent.',
      security: [],
      body: EnrollRequest,
      response: { 200: Machine, 201: Machine },
    },
    handler: async (request, reply) => {
      try {
        const { machine, created } = await enroll.enroll(request.body, request.ip);
        metrics.enrollments.inc({ result: created ? 'created' : 'updated' });
        return reply.status(created ? 201 : 200).send(machine);
      } catch (error) {
        metrics.enrollments.inc({ result: error instanceof MusterError && error.code === 'identifier_conflict' ? 'conflict' : 'rejected' });
        if (error instanceof MusterError && error.code === 'rate_limited') reply.header('retry-after', String(error.extra.retry_after));
        throw error;
      }
    },
  });
}
