import { IdParam, Job, JobListQuery, Page } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { JobService } from './service.ts';

const tags = ['jobs'];

export function jobRoutes(app: App, jobs: JobService): void {
  app.get('/api/v1/jobs', {
    config: { action: 'job.read' },
    schema: { tags, summary: 'List jobs, newest first', querystring: JobListQuery, response: { 200: Page(Job) } },
    handler: (request) => jobs.list(request.query),
  });
  app.get('/api/v1/jobs/:id', {
    config: { action: 'job.read' },
    schema: { tags, summary: 'Get a job', params: IdParam, response: { 200: Job } },
    handler: (request) => jobs.get(request.params.id),
  });
  app.get('/api/v1/jobs/:id/log', {
    config: { action: 'job.read' },
    schema: { tags, summary: "A job's output (text/plain; the tail when long)", params: IdParam },
    handler: async (request, reply) => reply.type('text/plain; charset=utf-8').send(await jobs.log(request.params.id)),
  });
  app.post('/api/v1/jobs/:id/cancel', {
    config: { action: 'job.write' },
    schema: { tags, summary: 'Cancel a queued job', params: IdParam, response: { 200: Job } },
    handler: (request) => jobs.cancel(request.principal.actor, request.params.id),
  });
}
