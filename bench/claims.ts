// One-time-password claims with CSR signing (seed 001, docs/identity.md): slots are allocated through the API,
// then 64 connections claim them, each with its own hardware id and a device CSR (ECDSA P-256, made before the
// load: 256 distinct keys taken in turn), so that every claim makes a machine, checks a CSR and signs a certificate.
// A second load claims devices that a rule gives a profile with a file holding the machine's secret.
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

type Load = { claimed: number; rate: number; p50: number; p99: number; bad: number; cpu: ReturnType<ReturnType<typeof cpuWindow>> };

export async function benchClaims(kind: DbKind, options: ClaimOptions): Promise<Figure[]> {
  const slots = options.slots ?? 12_000;
  const connections = options.connections ?? 64;
  const durationS = options.durationS ?? 8;
  const name = 'claims';
  const metric = 'OTP claims with CSR signing/s (201)';
  const profiled = 'claims with a profile (rule, sealed secret, rendered file)/s';
  try {
    const db = await createBenchDb(kind, 'claims', options.pgUrl);
    try {
      const server = await startServer({ db, env: { MUSTER_TUNNEL_PORTS: '10000-60000' } });
      try {
        const token = await adminToken(server, db);
        const allocate = async (fleet: string): Promise<string[]> => {
          if ((await request(server.base, 'POST', '/api/v1/fleets', { token, body: { name: fleet } })).status !== 201)
            throw new Error('no fleet');
          const otps: string[] = [];
          for (let left = slots; left > 0; left -= 5000) {
            const res = await request(server.base, 'POST', `/api/v1/fleets/${fleet}/slots`, {
              token,
              body: { count: Math.min(5000, left) },
              timeoutMs: 120_000,
            });
            if (res.status !== 201) throw new Error(`allocation answered ${res.status}: ${res.text.slice(0, 300)}`);
            otps.push(...(JSON.parse(res.text) as { slots: { otp: string }[] }).slots.map((s) => s.otp));
          }
          return otps;
        };
        const plain = await allocate('bench');
        const withProfile = await allocate('profiled');
        // As a fleet runs: a rule gives devices that report facts {profile: yes} a profile whose file holds each
        // machine's secret, so those claims also make and seal a secret and render the file into the answer.
        const profile = await request(server.base, 'PUT', '/api/v1/profiles/device', {
          token,
          body: {
            spec: {
              hostname: 'bench-{{ seq }}',
              files: [{ path: 'etc/device.conf', mode: '0600', template: 'HOST={{ hostname }}\nSECRET={{ secret }}\n' }],
            },
          },
        });
        if (profile.status !== 200) throw new Error(`profile answered ${profile.status}: ${profile.text.slice(0, 300)}`);
        const rule = await request(server.base, 'PUT', '/api/v1/rules/devices', {
          token,
          body: { door: 'claim', action: 'discover', profile: 'device', facts: { profile: 'yes' } },
        });
        if (rule.status !== 200) throw new Error(`rule answered ${rule.status}: ${rule.text.slice(0, 300)}`);
        const csrs = await deviceCsrs(256);
        const load = async (fleet: string, otps: string[], facts: Record<string, string> | undefined): Promise<Load> => {
          log(`claims/${kind}: ${otps.length} slots of ${fleet}; ${durationS} s with ${connections} connections`);
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
                  req.body = JSON.stringify({ fleet, otp: otps[i], hwid: `${fleet}-${i}`, csr: csrs[i % csrs.length], facts });
                  return req;
                },
              },
            ],
          });
          const cpu = window();
          const claimed = result.statusCodeStats['201']?.count ?? 0;
          if (n > otps.length) log(`claims/${kind}: ran out of slots (${n} requests for ${otps.length}); raise --slots`);
          const bad = result.non2xx + result.errors;
          log(`claims/${kind}: ${claimed} claimed in ${result.duration.toFixed(1)} s, ${bad} not 2xx`);
          return { claimed, rate: claimed / result.duration, p50: result.latency.p50, p99: result.latency.p99, bad, cpu };
        };
        const a = await load('bench', plain, undefined);
        const b = await load('profiled', withProfile, { profile: 'yes' });
        return [
          figure(name, kind, metric, a.rate, '/s', { op: '>=', value: claimTarget }, diagnose(a.cpu, kind)),
          figure(name, kind, 'claim latency p50', a.p50, 'ms'),
          figure(name, kind, 'claim latency p99', a.p99, 'ms'),
          figure(name, kind, profiled, b.rate, '/s', undefined, diagnose(b.cpu, kind)),
          figure(name, kind, 'claims not 201 + errors', a.bad + b.bad, '', { op: '<', value: 1 }),
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
