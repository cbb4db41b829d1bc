// One-time-password claims with CSR signing (seed 001, docs/identity.md): slots are allocated through the API,
// then 64 connections claim them, each with its own hardware id and a device CSR (ECDSA P-256, made before the
// load: 256 distinct keys taken in turn), so that every claim makes a machine, checks a CSR and signs a certificate.
// A second load claims devices that a rule gives a profile with a file holding the machine's secret; a third has
// every device of the first ask again once, with proof of its key (docs/identity.md), as a device whose answer
// was lost does.
// Alone: node bench/claims.ts --db sqlite|postgres|both [--slots 12000] [--connections 64] [--duration 8]
import 'reflect-metadata';
import { createPrivateKey, type KeyObject, sign, webcrypto } from 'node:crypto';
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

/** Device keys and their CSRs; the keys sign the proofs of the retries. */
async function deviceCsrs(count: number): Promise<{ csr: string; key: KeyObject }[]> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const devices: { csr: string; key: KeyObject }[] = [];
  for (let i = 0; i < count; i++) {
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=device-${i}`, keys, signingAlgorithm: algorithm });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    devices.push({ csr: csr.toString('pem'), key: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) });
  }
  return devices;
}

/** A retry's proof of possession, as the agent makes it. */
function proof(key: KeyObject, hwid: string, time: string) {
  return { time, signature: sign('sha256', Buffer.from(`muster-claim-v1\n${hwid}\n${time}`), key).toString('base64') };
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
        const devices = await deviceCsrs(256);
        const load = async (
          fleet: string,
          otps: string[],
          facts: Record<string, string> | undefined,
          retry?: { count: number; proofs: { time: string; signature: string }[] },
        ): Promise<Load> => {
          log(
            `claims/${kind}: ${retry ? `${retry.count} retries` : `${otps.length} slots`} of ${fleet}; ${durationS} s with ${connections} connections`,
          );
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
                  const i = n++ % (retry ? retry.count : otps.length);
                  const device = retry ? { proof: retry.proofs[i] } : { csr: devices[i % devices.length].csr, facts };
                  req.body = JSON.stringify({ fleet, otp: otps[i], hwid: `${fleet}-${i}`, ...device });
                  return req;
                },
              },
            ],
          });
          const cpu = window();
          const claimed = result.statusCodeStats[retry ? '200' : '201']?.count ?? 0;
          if (!retry && n > otps.length) log(`claims/${kind}: ran out of slots (${n} requests for ${otps.length}); raise --slots`);
          const bad = result.non2xx + result.errors;
          const codes = Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}×${count}`);
          log(`claims/${kind}: ${claimed} claimed in ${result.duration.toFixed(1)} s, ${bad} not 2xx (${codes.join(', ')})`);
          return { claimed, rate: claimed / result.duration, p50: result.latency.p50, p99: result.latency.p99, bad, cpu };
        };
        const a = await load('bench', plain, undefined);
        const b = await load('profiled', withProfile, { profile: 'yes' });
        // Devices 0..claimed-1 of the first load were claimed in turn; each asks again once, with proof.
        const count = Math.min(a.claimed, plain.length);
        const time = new Date().toISOString();
        const proofs = Array.from({ length: count }, (_, i) => proof(devices[i % devices.length].key, `bench-${i}`, time));
        const c = await load('bench', plain, undefined, { count, proofs });
        return [
          figure(name, kind, metric, a.rate, '/s', { op: '>=', value: claimTarget }, diagnose(a.cpu, kind)),
          figure(name, kind, 'claim latency p50', a.p50, 'ms'),
          figure(name, kind, 'claim latency p99', a.p99, 'ms'),
          figure(name, kind, profiled, b.rate, '/s', undefined, diagnose(b.cpu, kind)),
          figure(name, kind, 'profiled / plain claims', b.rate / a.rate, 'x', { op: '>=', value: 0.8 }),
          figure(name, kind, 'retries with proof (200)/s', c.rate, '/s', undefined, diagnose(c.cpu, kind)),
          figure(name, kind, 'retries / first claims', c.rate / a.rate, 'x', { op: '>=', value: 0.9 }),
          figure(name, kind, 'claims not 201 + errors', a.bad + b.bad + c.bad, '', { op: '<', value: 1 }),
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
