import { IdParam, IpPool, IpPoolSet } from '@muster/contract';
import type { App } from '../../platform/http/types.ts';
import type { PoolService } from './service.ts';

export function poolRoutes(app: App, pools: PoolService): void {
  app.put('/api/v1/fleets/:id/ip-pool', {
    config: { action: 'fleet.write' },
    schema: {
      tags: ['fleets'],
      summary: 'Set the fleet’s IP pool (IPv4 or IPv6): machines claimed into the fleet take the lowest free address',
      params: IdParam,
      body: IpPoolSet,
      response: { 200: IpPool },
    },
    handler: (request) => pools.set(request.principal.actor, request.params.id, request.body.cidr),
  });

  app.get('/api/v1/fleets/:id/ip-pool', {
    config: { action: 'fleet.read' },
    schema: {
      tags: ['fleets'],
      summary: 'The fleet’s IP pool and the addresses machines hold',
      params: IdParam,
      response: { 200: IpPool },
    },
    handler: (request) => pools.get(request.params.id),
  });
}
