import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../../packages/server/src/config/load.ts';
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
      const [issued] = (await h().request('GET', `/api/v1/machines/${claimed.body.machine_id}/certificates`)).body;
      // A fleet without an IP pool and a machine without a profile: no address, no files, no agent.
      assert.deepStrictEqual(JSON.parse(self.body), {
        machine_id: claimed.body.machine_id,
        hostname: slot.hostname,
        fleet: 'tls',
        fleet_seq: slot.fleet_seq,
        state: 'enrolled',
        labels: {},
        profile: null,
        ip_address: null,
        tunnel_port: slot.tunnel_port,
        renew_after: claimed.body.renew_after,
        certificate: {
          serial: issued.serial,
          subject: `CN=${slot.hostname}`,
          not_before: issued.not_before,
          not_after: issued.not_after,
          revoked: false,
        },
        files: [],
        agent: null,
      });

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

    test('a device learns its own allocation, certificate and rendered profile, and nothing of another device', async () => {
      const base = `https://127.0.0.1:${h().muster.tlsAddress?.port}`;
      writeFileSync(file('ca.pem'), (await h().request('GET', '/api/v1/ca', { token: null })).body.certificate);
      const profile = await h().request('PUT', '/api/v1/profiles/edge-node', {
        body: {
          spec: {
            secret: { bytes: 16, encoding: 'hex' },
            files: [
              {
                path: 'etc/muster/device.conf',
                mode: '0600',
                template: 'HOST={{ hostname }}\nFLEET={{ fleet }}\nSITE={{ labels.site }}\nSECRET={{ secret }}\n',
              },
            ],
            agent: { commands: ['systemctl restart tunnel'], services: ['tunnel'] },
          },
        },
      });
      assert.equal(profile.status, 200, profile.text);
      const rule = await h().request('PUT', '/api/v1/rules/edge-node', {
        body: { door: 'claim', action: 'discover', profile: 'edge-node', labels: { site: 'lab-1' }, facts: { role: 'edge' }, priority: 5 },
      });
      assert.equal(rule.status, 200, rule.text);
      assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } })).status, 201);
      assert.equal((await h().request('PUT', '/api/v1/fleets/edge/ip-pool', { body: { cidr: '10.20.0.0/29' } })).status, 200);
      const slots = (await h().request('POST', '/api/v1/fleets/edge/slots', { body: { count: 2 } })).body.slots;
      const claims: { machine_id: string; renew_after: string; configuration: { files: unknown[] } }[] = [];
      for (const [i, slot] of slots.entries()) {
        const claimed = await h().request('POST', '/api/v1/claims/otp', {
          token: null,
          body: { fleet: 'edge', otp: slot.otp, hwid: `HW-EDGE-${i}`, csr: newKeyAndCsr(`edge${i}`), facts: { role: 'edge' } },
        });
        assert.equal(claimed.status, 201, claimed.text);
        writeFileSync(file(`edge${i}.pem`), claimed.body.certificate);
        claims.push(claimed.body);
      }

      const views: string[] = [];
      for (const [i, slot] of slots.entries()) {
        const reply = await curl(`${base}/api/v1/device/self`, { cert: `edge${i}` });
        assert.equal(reply.status, 200, reply.body);
        const view = JSON.parse(reply.body);
        views.push(reply.body);
        const [issued] = (await h().request('GET', `/api/v1/machines/${claims[i].machine_id}/certificates`)).body;
        const secret = /SECRET=([0-9a-f]{32})\n/.exec(view.files[0]?.content ?? '')?.[1] as string;
        assert.ok(secret, 'the device gets its secret in its files');
        const content = `HOST=${slot.hostname}\nFLEET=edge\nSITE=lab-1\nSECRET=${secret}\n`;
        assert.deepStrictEqual(view, {
          machine_id: claims[i].machine_id,
          hostname: slot.hostname,
          fleet: 'edge',
          fleet_seq: slot.fleet_seq,
          state: 'enrolled',
          labels: { site: 'lab-1' },
          profile: { name: 'edge-node', version: 1 },
          ip_address: `10.20.0.${i + 1}`,
          tunnel_port: slot.tunnel_port,
          renew_after: claims[i].renew_after,
          certificate: {
            serial: issued.serial,
            subject: issued.subject,
            not_before: issued.not_before,
            not_after: issued.not_after,
            revoked: false,
          },
          files: [
            {
              path: 'etc/muster/device.conf',
              mode: '0600',
              owner: 'root:root',
              content,
              sha256: createHash('sha256').update(content).digest('hex'),
            },
          ],
          agent: { commands: ['systemctl restart tunnel'], services: ['tunnel'] },
        });
        // The same files as the claim answered, the same secret: the view renders what the device holds.
        assert.deepStrictEqual(view.files, claims[i].configuration.files);
      }
      const doc = (await h().request('GET', '/api/v1/openapi.json', { token: null })).body;
      const documented = doc.paths['/api/v1/device/self'].get.responses['200'].content['application/json'].schema;
      assert.deepStrictEqual(documented.required, Object.keys(JSON.parse(views[0])), 'OpenAPI documents every field of the view');
      // Asking again renders the same: the secret is the machine's, kept, not made anew per answer.
      assert.equal((await curl(`${base}/api/v1/device/self`, { cert: 'edge0' })).body, views[0]);
      // Neither view names the other machine, its address, host name or secret.
      for (const [i, text] of views.entries()) {
        const other = JSON.parse(views[1 - i]);
        for (const fact of [other.machine_id, other.hostname, other.ip_address, /SECRET=(\w+)/.exec(other.files[0].content)?.[1]])
          assert.ok(!text.includes(fact), `view ${i} names ${fact}`);
      }
    });

    test('a profile given after the claim: devices asking at once all get the one secret that is kept', async () => {
      const base = `https://127.0.0.1:${h().muster.tlsAddress?.port}`;
      writeFileSync(file('ca.pem'), (await h().request('GET', '/api/v1/ca', { token: null })).body.certificate);
      assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'late' } })).status, 201);
      const [slot] = (await h().request('POST', '/api/v1/fleets/late/slots', { body: { count: 1 } })).body.slots;
      const claimed = await h().request('POST', '/api/v1/claims/otp', {
        token: null,
        body: { fleet: 'late', otp: slot.otp, hwid: 'HW-LATE-1', csr: newKeyAndCsr('late') },
      });
      assert.equal(claimed.status, 201, claimed.text);
      writeFileSync(file('late.pem'), claimed.body.certificate);
      const spec = { secret: { bytes: 16, encoding: 'hex' }, files: [{ path: 'etc/late.conf', template: 'SECRET={{ secret }}\n' }] };
      assert.equal((await h().request('PUT', '/api/v1/profiles/late-node', { body: { spec } })).status, 200);
      const assigned = await h().request('POST', '/api/v1/profiles/late-node/assign', { body: { machines: [claimed.body.machine_id] } });
      assert.equal(assigned.status, 200, assigned.text);

      const replies = await Promise.all(Array.from({ length: 4 }, () => curl(`${base}/api/v1/device/self`, { cert: 'late' })));
      const contents = replies.map((r) => JSON.parse(r.body).files.map((f: { content: string }) => f.content));
      assert.match(contents[0][0], /^SECRET=[0-9a-f]{32}\n$/);
      assert.deepStrictEqual(contents, Array(4).fill(contents[0]), 'one secret in every answer');
      const later = await curl(`${base}/api/v1/device/self`, { cert: 'late' });
      assert.deepStrictEqual(
        JSON.parse(later.body).files.map((f: { content: string }) => f.content),
        contents[0],
        'and it is the one kept',
      );
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
