import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../../packages/server/src/config.ts';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase } from '../support/harness.ts';
import { testTool } from '../tools/list.ts';

// Mutual TLS on --tls-listen (docs/identity.md): a device holding a muster certificate reaches the device routes
// with curl; one without, or with a certificate of another CA, or a revoked one, is refused.

const keys = deviceKeys('mtls');
const file = keys.file;
const newKeyAndCsr = (name: string) => keys.csr(name);

/** curl as a device would run it: trusting muster's CA, with its certificate and key when given. */
async function curl(
  url: string,
  options: { cert?: string; method?: string; body?: unknown } = {},
): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--max-time', '20', '--cacert', file('ca.pem'), '-o', '-', '-w', '\n%{http_code}', url];
  if (options.cert) args.push('--cert', file(`${options.cert}.pem`), '--key', file(`${options.cert}.key`));
  if (options.method)
    args.push('-X', options.method, '-H', 'content-type: application/json', '--data-binary', JSON.stringify(options.body));
  // Not spawnSync: the server answering curl runs in this process.
  const text = await new Promise<string>((resolve, reject) =>
    execFile(testTool('curl').path, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    ),
  );
  const cut = text.lastIndexOf('\n');
  return { status: Number(text.slice(cut + 1)), body: text.slice(0, cut) };
}

eachDatabase(
  'Mutual TLS: /api/v1/device/* on --tls-listen',
  (h) => {
    test('a device reaches its own record with its muster certificate, renews it, and is refused once revoked', async () => {
      const address = h().muster.tlsAddress;
      assert.ok(address, 'the HTTPS listener is up');
      const base = `https://127.0.0.1:${address.port}`;
      writeFileSync(file('ca.pem'), (await h().request('GET', '/api/v1/ca', { token: null })).body.certificate);

      assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'tls' } })).status, 201);
      const [slot] = (await h().request('POST', '/api/v1/fleets/tls/slots', { body: { count: 1 } })).body.slots;
      const claimed = await h().request('POST', '/api/v1/claims/otp', {
        token: null,
        body: { fleet: 'tls', otp: slot.otp, hwid: 'HW-TLS-1', csr: newKeyAndCsr('dev') },
      });
      assert.equal(claimed.status, 201, claimed.text);
      writeFileSync(file('dev.pem'), claimed.body.certificate);

      // curl checks the server's certificate against muster's CA and its address (127.0.0.1 is a SAN).
      const self = await curl(`${base}/api/v1/device/self`, { cert: 'dev' });
      assert.equal(self.status, 200, self.body);
      assert.equal(JSON.parse(self.body).id, claimed.body.machine_id);

      const anonymous = await curl(`${base}/api/v1/device/self`);
      assert.equal(anonymous.status, 401);
      assert.equal(JSON.parse(anonymous.body).code, 'unauthenticated');
      // A certificate of another CA, with the same key, is not trusted.
      openssl('req', '-x509', '-key', file('dev.key'), '-subj', `/CN=${slot.hostname}`, '-days', '1', '-out', file('forged.pem'));
      openssl('pkey', '-in', file('dev.key'), '-out', file('forged.key'));
      assert.equal((await curl(`${base}/api/v1/device/self`, { cert: 'forged' })).status, 401);
      // Plain HTTP has no client certificate.
      assert.equal((await h().request('GET', '/api/v1/device/self', { token: null })).status, 401);
      // The rest of the API works over HTTPS as over HTTP.
      assert.equal((await curl(`${base}/api/v1/ca`)).status, 200);

      const renewed = await curl(`${base}/api/v1/device/certificate`, { cert: 'dev', method: 'POST', body: { csr: newKeyAndCsr('next') } });
      assert.equal(renewed.status, 201, renewed.body);
      const next = JSON.parse(renewed.body);
      writeFileSync(file('next.pem'), next.certificate);
      assert.match(openssl('verify', '-CAfile', file('ca.pem'), file('next.pem')), /OK/);
      assert.equal(next.machine_id, claimed.body.machine_id);
      assert.equal(next.subject, `CN=${slot.hostname}`);
      assert.equal((await curl(`${base}/api/v1/device/self`, { cert: 'next' })).status, 200);
      const events = (await h().request('GET', `/api/v1/machines/${claimed.body.machine_id}/events`)).body.items.map(
        (e: { type: string }) => e.type,
      );
      assert.ok(events.includes('certificate.renewed'));
      assert.equal((await curl(`${base}/api/v1/device/certificate`, { method: 'POST', body: { csr: newKeyAndCsr('anon') } })).status, 401);

      const serial = (await h().request('GET', `/api/v1/machines/${claimed.body.machine_id}/certificates`)).body[0].serial;
      assert.equal((await h().request('POST', `/api/v1/certificates/${serial}/revoke`, { body: { reason: 'test' } })).status, 200);
      assert.equal((await curl(`${base}/api/v1/device/self`, { cert: 'dev' })).status, 401, 'a revoked certificate is refused');
      assert.equal((await curl(`${base}/api/v1/device/self`, { cert: 'next' })).status, 200, 'the renewed one still works');
    });
  },
  { env: { MUSTER_TLS_LISTEN: '127.0.0.1:0' } },
);

test('tls_cert without tls_key, and a bad --tls-listen, stop the server at start with one line', () => {
  assert.throws(
    () => loadConfig({ tlsListen: '127.0.0.1:8443' }, { MUSTER_TLS_CERT: '/etc/cert.pem' }),
    /tls_cert and tls_key go together/,
  );
  assert.throws(() => loadConfig({ tlsListen: 'nowhere:port' }, {}), /tls/);
  assert.equal(loadConfig({}, {}).tls, null);
});
