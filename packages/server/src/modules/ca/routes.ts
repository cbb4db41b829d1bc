import {
  CaImport,
  CaInfo,
  CaPolicy,
  CaPolicySet,
  Certificate,
  CertificateRevoke,
  DeviceRenew,
  DeviceSelf,
  IdParam,
  type Machine,
} from '@muster/contract';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { IssuePolicy } from '../../platform/crypto/ca.ts';
import { verifiedPeerCertificate } from '../../platform/http/tls.ts';
import type { App } from '../../platform/http/types.ts';
import type { CaPolicyService } from './policy-service.ts';
import { type CaService, noDeviceCertificate } from './service.ts';

/** Refuses before the body is read when the client presented no certificate that chains to muster's CA. */
async function requireClientCertificate(request: FastifyRequest): Promise<void> {
  if (!verifiedPeerCertificate(request)) throw noDeviceCertificate();
}

/** What the CA's routes need of machines; `policy` is the certificate policy of the profile version a machine holds. */
export interface CaMachines {
  id(ref: string): Promise<string>;
  get(id: string): Promise<Machine>;
  policy(id: string): Promise<IssuePolicy | null>;
  /** The device's own view of the machine a valid certificate stands for. */
  self(certificate: Certificate): Promise<DeviceSelf>;
}

export function caRoutes(app: App, ca: CaService, policy: CaPolicyService, machines: CaMachines): void {
  const machineId = machines.id;

  app.get('/api/v1/device/self', {
    config: { action: 'public' },
    onRequest: requireClientCertificate,
    schema: {
      tags: ['devices'],
      summary: 'The device’s own view of itself: allocation, certificate, profile files (mutual TLS on --tls-listen only)',
      description:
        'For the machine whose muster certificate the caller presents: host name, fleet, state, labels, IP address and tunnel port, the certificate’s dates, and its profile’s files (with the machine’s secret) and agent settings, rendered now.',
      security: [{ deviceCertificate: [] }],
      response: { 200: DeviceSelf },
    },
    handler: async (request) => machines.self(await ca.deviceCertificate(verifiedPeerCertificate(request))),
  });

  app.post('/api/v1/device/certificate', {
    config: { action: 'public' },
    onRequest: requireClientCertificate,
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['devices'],
      summary: 'Renew: a device with a valid muster certificate sends a CSR for its next key and gets a new certificate (mutual TLS only)',
      security: [{ deviceCertificate: [] }],
      body: DeviceRenew,
      response: { 201: Certificate },
    },
    handler: async (request, reply) => {
      const current = await ca.deviceCertificate(verifiedPeerCertificate(request));
      const machine = await machines.get(current.machine_id as string);
      const hostname = machine.hostname ?? current.subject.replace(/^CN=/, '');
      // A renewal follows the profile version the machine holds now, as the first certificate did.
      const subject = (await machines.policy(machine.id)) ?? hostname;
      return reply.status(201).send(await ca.renew(current, request.body.csr, subject, request.ip));
    },
  });

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

  app.put('/api/v1/ca', {
    config: { action: 'ca.write' },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['ca'],
      summary: 'Import an intermediate CA (certificate, key, chain): it issues every certificate from now on',
      body: CaImport,
      response: { 200: CaInfo },
    },
    handler: (request) => ca.import(request.principal.actor, request.body),
  });

  app.get('/api/v1/ca/policy', {
    config: { action: 'ca.read' },
    schema: {
      tags: ['ca'],
      summary: 'The CA policy: what any certificate muster issues may hold (usages, names, addresses, validity)',
      response: { 200: CaPolicy },
    },
    handler: () => policy.get(),
  });

  app.put('/api/v1/ca/policy', {
    config: { action: 'ca.write' },
    schema: {
      tags: ['ca'],
      summary: 'Replace the CA policy whole (a field left out takes its default); profiles and issuance are held to it',
      body: CaPolicySet,
      response: { 200: CaPolicy },
    },
    handler: (request) => policy.set(request.principal.actor, request.body),
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
