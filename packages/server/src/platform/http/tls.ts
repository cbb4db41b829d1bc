import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { App } from './types.ts';

export interface TlsListener {
  address: { address: string; port: number };
  close(): Promise<void>;
}

/**
 * The HTTPS listener (docs/identity.md): the same routes as the HTTP one, over TLS, asking every client for a
 * certificate without requiring one. A client's certificate is only trusted when it chains to `ca`; routes that
 * need a device read it with `verifiedPeerSerial`.
 */
export function listenTls(
  app: App,
  options: { host: string; port: number; cert: string; key: string; ca: string[] },
): Promise<TlsListener> {
  const server = https.createServer(
    { cert: options.cert, key: options.key, ca: options.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req, res) => app.routing(req, res),
  );
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      resolve({
        address: { address, port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The serial (lower-case hex) of the client certificate, when the client sent one that chains to the CA; else null. */
export function verifiedPeerSerial(request: FastifyRequest): string | null {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (!socket.encrypted || !socket.authorized || typeof socket.getPeerCertificate !== 'function') return null;
  const serial = socket.getPeerCertificate().serialNumber;
  return serial ? serial.toLowerCase().replace(/^0+/, '') : null;
}
