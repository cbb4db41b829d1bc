import {
  ClaimStatus,
  CreatedEnrollmentToken,
  EnrollmentToken,
  EnrollmentTokenCreate,
  IdParam,
  MusterError,
  TokenClaim,
  TokenClaimAnswer,
} from '@muster/contract';
import { Type } from 'typebox';
import { throttled } from '../../platform/http/limit.ts';
import type { App } from '../../platform/http/types.ts';
import { countedAttempt, type FailureCounter, sourceKey } from '../../platform/limits/limiter.ts';
import type { EnrollmentService } from './service.ts';

const tags = ['enrollment tokens'];

export function enrollmentTokenRoutes(
  app: App,
  tokens: EnrollmentService,
  wrongClaims: FailureCounter,
  machineId: (ref: string) => Promise<string>,
): void {
  app.post('/api/v1/enrollment-tokens', {
    config: { action: 'fleet.write' },
    schema: {
      tags,
      summary: 'Create an enrollment token; the secret is in this answer only',
      body: EnrollmentTokenCreate,
      response: { 201: CreatedEnrollmentToken },
    },
    handler: async (request, reply) => reply.status(201).send(await tokens.create(request.principal.actor, request.body)),
  });

  app.get('/api/v1/enrollment-tokens', {
    config: { action: 'fleet.read' },
    schema: { tags, summary: 'Enrollment tokens, without their secrets', response: { 200: Type.Array(EnrollmentToken) } },
    handler: () => tokens.list(),
  });

  app.post('/api/v1/enrollment-tokens/:name/revoke', {
    config: { action: 'fleet.write' },
    schema: {
      tags,
      summary: 'Revoke an enrollment token: claims with it are refused from now on; machines it made stay',
      params: Type.Object({ name: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
      response: { 200: EnrollmentToken },
    },
    handler: (request) => tokens.revoke(request.principal.actor, request.params.name),
  });

  app.post('/api/v1/claims/token', {
    config: { action: 'public' },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['claims'],
      summary: 'A device claims with an enrollment token and its hardware id (no auth; ask again to learn the decision)',
      description:
        '201 the first time (status approved, or pending when the token wants an operator). Asking again: 200 (approved) or 202 (pending); ' +
        'the identity itself (certificate, files, address), read and rendered now, only with `proof`, a signature by the key of the first ' +
        'CSR (docs/identity.md), else the status alone. It keeps working after the token is revoked. A retired machine: 410 machine_retired. ' +
        'A new claim with a token that is unknown, revoked, expired or used up, or a rejected claim: 403 invalid_claim saying which. ' +
        'Another machine’s hardware id: 409.',
      security: [],
      body: TokenClaim,
      response: {
        200: Type.Union([TokenClaimAnswer, ClaimStatus]),
        201: TokenClaimAnswer,
        202: Type.Union([TokenClaimAnswer, ClaimStatus]),
      },
    },
    handler: async (request, reply) => {
      const { answer, created } = await countedAttempt(
        wrongClaims,
        sourceKey(request.ip),
        () => tokens.claim(request.body, request.ip),
        (error) => error instanceof MusterError && error.code === 'invalid_claim',
        (wait) => throttled(reply, wait, `Too many wrong claims from ${request.ip}`),
        (error) => request.log.error({ err: error }, 'wrong claim not counted'),
      );
      return reply.status(created ? 201 : answer.status === 'pending' ? 202 : 200).send(answer);
    },
  });

  app.post('/api/v1/machines/:id/approve', {
    config: { action: 'machine.write' },
    schema: {
      tags: ['machines'],
      summary: 'Approve a machine’s pending claim: it is enrolled and gets its certificate (the device collects its files itself)',
      params: IdParam,
      response: { 200: TokenClaimAnswer },
    },
    handler: async (request) => tokens.approve(request.principal.actor, await machineId(request.params.id)),
  });

  app.post('/api/v1/machines/:id/reject', {
    config: { action: 'machine.write' },
    schema: {
      tags: ['machines'],
      summary: 'Reject a machine’s pending claim: the machine is retired and the device told so',
      params: IdParam,
      body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false })),
      response: { 204: Type.Null() },
    },
    handler: async (request, reply) => {
      await tokens.reject(request.principal.actor, await machineId(request.params.id), request.body?.reason);
      return reply.status(204).send(null);
    },
  });
}
