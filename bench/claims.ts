// One-time-password claims with CSR signing (seed 001, docs/identity.md): slots are allocated through the API,
// then 64 connections claim them, each with its own hardware id and a device CSR (ECDSA P-256, made before the
// load: 256 distinct keys taken in turn), so that every claim makes a machine, checks a CSR and signs a certificate.
// Alone: node bench/claims.ts --db sqlite|postgres|both [--slots 12000] [--connections 64] [--duration 8]
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import autocannon from 'autocannon';
import { createBenchDb } from './lib/database.ts';
import { type DbKind, type Figure, failed, figure } from './lib/figures.ts';
import { cpuWindow, diagnose } from './lib/proc.ts';
import { log, runPerDatabase } from './lib/run.ts';
import { adminToken, request, startServer } from './lib/server.ts';

export interface ClaimOptions {
  pgUrl: string;
  slots?: number;
  connections?: number;
  durationS?: number;
}

export const claimTarget = 1000;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

async function deviceCsrs(count: number): Promise<string[]> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const csrs: string[] = [];
  for (let i = 0; i < count; i++) {
    const keys = (await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=device-${i}`, keys, signingAlgorithm: algorithm });
    csrs.push(csr.toString('pem'));
  }
  return csrs;
}

export async function benchClaims(kind: DbKind, options: ClaimOptions): Promise<Figure[]> {
  const slots = options.slots ?? 12_000;
  const connections = options.connections ?? 64;
  const durationS = options.durationS ?? 8;
  const name = 'claims';
  const metric = 'OTP claims with CSR signing/s (201)';
  try {
    const db = await createBenchDb(kind, 'claims', options.pgUrl);
    try {
      const server = await startServer({ db, env: { MUSTER_TUNNEL_PORTS: '10000-60000' } });
      try {
        const token = await adminToken(server, db);
        if ((await request(server.base, 'POST', '/api/v1/fleets', { token, body: { name: 'bench' } })).status !== 201)
          throw new Error('no fleet');
        const otps: string[] = [];
        for (let left = slots; left > 0; left -= 5000) {
          const res = await request(server.base, 'POST', '/api/v1/fleets/bench/slots', {
            token,
            body: { count: Math.min(5000, left) },
            timeoutMs: 120_000,
          });
          if (res.status !== 201) throw new Error(`allocation answered ${res.status}: ${res.text.slice(0, 300)}`);
          otps.push(...(JSON.parse(res.text) as { slots: { otp: string }[] }).slots.map((s) => s.otp));
        }
        const csrs = await deviceCsrs(256);
        log(`claims/${kind}: ${otps.length} slots allocated; ${durationS} s with ${connections} connections`);
        let n = 0;
        const window = cpuWindow(server.pid, kind);
        const result = await autocannon({
          url: server.base,
          connections,
          duration: durationS,
          timeout: 10,
          requests: [
            {
              method: 'POST',
              path: '/api/v1/claims/otp',
              headers: { 'content-type': 'application/json' },
              setupRequest: (req) => {
                const i = n++ % otps.length;
                req.body = JSON.stringify({ fleet: 'bench', otp: otps[i], hwid: `BENCH-${i}`, csr: csrs[i % csrs.length] });
                return req;
              },
            },
          ],
        });
        const cpu = window();
        const created = result.statusCodeStats['201']?.count ?? 0;
        if (n > otps.length) log(`claims/${kind}: ran out of slots (${n} requests for ${otps.length}); raise --slots`);
        const bad = result.non2xx + result.errors;
        log(`claims/${kind}: ${created} claimed in ${result.duration.toFixed(1)} s, ${bad} not 2xx`);
        return [
          figure(name, kind, metric, created / result.duration, '/s', { op: '>=', value: claimTarget }, diagnose(cpu, kind)),
          figure(name, kind, 'claim latency p50', result.latency.p50, 'ms'),
          figure(name, kind, 'claim latency p99', result.latency.p99, 'ms'),
          figure(name, kind, 'claims not 201 + errors', bad, '', { op: '<', value: 1 }),
        ];
      } finally {
        await server.stop();
      }
    } finally {
      await db.dispose();
    }
  } catch (error) {
    log(`claims/${kind}: ${error instanceof Error ? error.message : String(error)}`);
    return [failed(name, kind, metric, '/s', { op: '>=', value: claimTarget }, error)];
  }
}

if (import.meta.main) {
  await runPerDatabase('claims', ['slots', 'connections', 'duration'], (kind, { pgUrl, number }) =>
    benchClaims(kind, { pgUrl, slots: number('slots', 12_000), connections: number('connections', 64), durationS: number('duration', 8) }),
  );
}
