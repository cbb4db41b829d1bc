import { ClaimAnswer, ClaimStatus, FleetSlot, IdParam, MusterError, OtpClaim, SlotAllocate, SlotAllocation } from '@muster/contract';
import { Type } from 'typebox';
import { throttled } from '../../platform/http/limit.ts';
import type { App } from '../../platform/http/types.ts';
import { countedAttempt, type FailureCounter, sourceKey } from '../../platform/limits/limiter.ts';
import type { ClaimService } from './service.ts';

export function claimRoutes(app: App, claims: ClaimService, wrongClaims: FailureCounter): void {
  app.post('/api/v1/fleets/:id/slots', {
    config: { action: 'fleet.write' },
    schema: {
      tags: ['fleets'],
      summary: 'Allocate slots: hostnames from the fleet’s sequence, unique tunnel ports, one-time passwords shown this once',
      params: IdParam,
      body: SlotAllocate,
      response: { 201: SlotAllocation },
    },
    handler: async (request, reply) =>
      reply.status(201).send(await claims.allocate(request.principal.actor, request.params.id, request.body.count)),
  });

  app.get('/api/v1/fleets/:id/slots', {
    config: { action: 'fleet.read' },
    schema: {
      tags: ['fleets'],
      summary: 'A fleet’s slots, claimed or not (never their passwords)',
      params: IdParam,
      response: { 200: Type.Array(FleetSlot) },
    },
    handler: (request) => claims.list(request.params.id),
  });

  app.post('/api/v1/claims/otp', {
    config: { action: 'public' },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['claims'],
      summary: 'A device claims its fleet slot with a one-time password and its hardware id (no auth; safe to retry)',
      description:
        '201 the first time. The same device asking again: 200 with its identity, read and rendered now, when it sends `proof` (a signature ' +
        'by the key of its first CSR, docs/identity.md), else 200 with its status only. A retired machine: 410 machine_retired. Another hardware ' +
        'id: 409. A wrong password or fleet: 403 invalid_claim, alike for every wrong part. Only wrong claims count against a source (429 with ' +
        'Retry-After past MUSTER_CLAIM_FAILURE_RATE a minute).',
      security: [],
      body: OtpClaim,
      response: { 200: Type.Union([ClaimAnswer, ClaimStatus]), 201: ClaimAnswer },
    },
    handler: async (request, reply) => {
      const { answer, created } = await countedAttempt(
        wrongClaims,
        sourceKey(request.ip),
        () => claims.claim(request.body, request.ip),
        (error) => error instanceof MusterError && error.code === 'invalid_claim',
        (wait) => throttled(reply, wait, `Too many wrong claims from ${request.ip}`),
        (error) => request.log.error({ err: error }, 'wrong claim not counted'),
      );
      return reply.status(created ? 201 : 200).send(answer);
    },
  });
}
