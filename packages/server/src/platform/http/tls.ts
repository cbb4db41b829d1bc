import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { App } from './types.ts';

export interface TlsListener {
  address: { address: string; port: number };
  /** Trusts these CA certificates (PEM) for client certificates from the next handshake on. */
  trust(ca: string[]): void;
  close(): Promise<void>;
}

/** A client certificate that chained to a trusted CA in the handshake: its serial and its DER, to compare with what muster issued. */
export interface PeerCertificate {
  /** Lower-case hex without leading zeros, as TLS reports it. */
  serial: string;
  der: Buffer;
}

/**
 * The HTTPS listener (docs/identity.md): the same routes as the HTTP one, over TLS, asking every client for a
 * certificate without requiring one. A client's certificate is only trusted when it chains to `ca`; routes that
 * need a device read it with `verifiedPeerCertificate`.
 */
export function listenTls(
  app: App,
  options: { host: string; port: number; cert: string; key: string; ca: string[] },
): Promise<TlsListener> {
  const context = { cert: options.cert, key: options.key, ca: options.ca, minVersion: 'TLSv1.2' } as const;
  const server = https.createServer({ ...context, requestCert: true, rejectUnauthorized: false }, (req, res) => app.routing(req, res));
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      resolve({
        address: { address, port },
        trust: (ca) => server.setSecureContext({ ...context, ca }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The client certificate, when the client sent one that chains to a trusted CA; else null. */
export function verifiedPeerCertificate(request: FastifyRequest): PeerCertificate | null {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (!socket.encrypted || !socket.authorized || typeof socket.getPeerCertificate !== 'function') return null;
  const peer = socket.getPeerCertificate();
  if (!peer.serialNumber || !peer.raw) return null;
  return { serial: peer.serialNumber.toLowerCase().replace(/^0+/, ''), der: peer.raw };
}
