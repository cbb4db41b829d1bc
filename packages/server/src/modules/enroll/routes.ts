import { EnrollRequest, Machine, MusterError } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { Metrics } from '../../platform/metrics/metrics.ts';
import type { EnrollService } from './service.ts';

export function enrollRoutes(app: App, enroll: EnrollService, metrics: Metrics, ratePerMinute: number): void {
  app.post('/api/v1/enroll', {
    config: { action: 'public', ...(ratePerMinute > 0 && { rateLimit: { max: ratePerMinute, timeWindow: 60_000 } }) },
    bodyLimit: 128 * 1024,
    schema: {
      tags: ['enrollment'],
      summary: 'Enroll a machine from its registration image (no auth; safe to retry)',
      description:
        '201 when the machine is new, 200 when its identifiers were known. Identifiers of two machines are a 409 and a conflict event.',
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
        throw error;
      }
    },
  });
}
