import { CaInfo, Certificate, CertificateRevoke, IdParam } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { CaService } from './service.ts';

export function caRoutes(app: App, ca: CaService, machineId: (ref: string) => Promise<string>): void {
  app.get('/api/v1/ca', {
    config: { action: 'public' },
    schema: {
      tags: ['ca'],
      summary: 'muster’s CA certificate, its subject and SHA-256 fingerprint (no auth)',
      security: [],
      response: { 200: CaInfo },
    },
    handler: () => ca.info(),
  });

  app.get('/api/v1/ca/crl', {
    config: { action: 'public' },
    schema: { tags: ['ca'], summary: 'The certificate revocation list, PEM (no auth); made on request, valid a day', security: [] },
    handler: async (_request, reply) => reply.type('application/x-pem-file').send(await ca.crl()),
  });

  app.get('/api/v1/machines/:id/certificates', {
    config: { action: 'machine.read' },
    schema: {
      tags: ['machines'],
      summary: 'The certificates muster issued to a machine',
      params: IdParam,
      response: { 200: Type.Array(Certificate) },
    },
    handler: async (request) => ca.listForMachine(await machineId(request.params.id)),
  });

  app.post('/api/v1/certificates/:serial/revoke', {
    config: { action: 'certificate.revoke' },
    schema: {
      tags: ['ca'],
      summary: 'Revoke a certificate: it is in the CRL from now on',
      params: Type.Object({ serial: Type.String({ pattern: '^[0-9A-Fa-f]{2,40}$' }) }, { additionalProperties: false }),
      body: Type.Optional(CertificateRevoke),
      response: { 200: Certificate },
    },
    handler: (request) => ca.revoke(request.principal.actor, request.params.serial, request.body?.reason),
  });
}
