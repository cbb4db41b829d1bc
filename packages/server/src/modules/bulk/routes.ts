import { BulkRequest, BulkResult } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { BulkService } from './service.ts';

export function bulkRoutes(app: App, bulk: BulkService): void {
  app.post('/api/v1/bulk', {
    config: { action: 'bulk.run' },
    schema: {
      tags: ['bulk'],
      summary: 'Run update, build, transition or group membership on many machines; results per machine',
      description: 'Send Idempotency-Key to make a retry return the first answer instead of running again.',
      headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }),
      body: BulkRequest,
      response: { 200: BulkResult },
    },
    handler: (request) => bulk.run(request.principal, request.body, request.headers['idempotency-key']),
  });
}
