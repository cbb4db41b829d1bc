import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import { databaseKinds } from '../support/databases.ts';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase, type Harness, startHarness, testConfig } from '../support/harness.ts';
import { testPki } from '../support/pki.ts';
import { testTool } from '../tools/list.ts';
import { assertProblem, eventsAfter, lastEventId } from './assertions.ts';

// An operator's own PKI (docs/identity.md): a root made with openssl, an intermediate it signs, imported into
// muster; device certificates then chain to the root, as openssl verify shows, the CRL is signed by the
// intermediate, and the mutual TLS listener takes the new certificates at once.

const pki = testPki('ca-import');
const devices = deviceKeys('ca-import-devices');

/** The DER of a PEM certificate, base64: compares certificates whatever their line breaks. */
const der = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s+/g, '');
const fingerprint = (name: string) => openssl('x509', '-in', pki.file(name), '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
const opensslDate = (name: string, which: 'startdate' | 'enddate') =>
  new Date(openssl('x509', '-in', pki.file(name), '-noout', `-${which}`).trim().split('=')[1]).toISOString();
/** Two thirds into a certificate's validity, as `renew_after` says. */
const twoThirds = (cert: { not_before: string; not_after: string }) => {
  const from = Date.parse(cert.not_before);
  return new Date(from + ((Date.parse(cert.not_after) - from) * 2) / 3).toISOString();
};

/** openssl verify of a device certificate against the root alone, the given intermediate untrusted. */
function verifiesAgainstRoot(device: string, intermediate: string): void {
  writeFileSync(pki.file('untrusted.pem'), intermediate);
  writeFileSync(pki.file('device.pem'), device);
  assert.match(openssl('verify', '-CAfile', pki.file('root.pem'), '-untrusted', pki.file('untrusted.pem'), pki.file('device.pem')), /: OK/);
}

/** curl as a device runs it: trusting `cacert` for the server, with its certificate and key when given. */
async function curl(
  url: string,
  cacert: string,
  options: { cert?: string; body?: unknown } = {},
): Promise<{ status: number; body: string }> {
  const args = ['-sS', '--max-time', '20', '--cacert', cacert, '-o', '-', '-w', '\n%{http_code}', url];
  if (options.cert) args.push('--cert', `${options.cert}.pem`, '--key', `${options.cert}.key`);
  if (options.body) args.push('-X', 'POST', '-H', 'content-type: application/json', '--data-binary', JSON.stringify(options.body));
  // Not spawnSync: the server answering curl runs in this process.
  const text = await new Promise<string>((resolve, reject) =>
    execFile(testTool('curl').path, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    ),
  );
  const cut = text.lastIndexOf('\n');
  return { status: Number(text.slice(cut + 1)), body: text.slice(0, cut) };
}

type Requester = (
  method: string,
  url: string,
  options?: { body?: unknown; token?: string | null },
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape
) => Promise<{ status: number; body: any; text: string }>;

/** A device of `fleet` claims a new slot with a CSR for a new key (devices.file(hwid + '.key')); its certificate goes to hwid + '.pem'. */
async function claimDevice(request: Requester, fleet: string, hwid: string, keyArgs?: string[]) {
  const [slot] = (await request('POST', `/api/v1/fleets/${fleet}/slots`, { body: { count: 1 } })).body.slots;
  const claim = await request('POST', '/api/v1/claims/otp', {
    token: null,
    body: { fleet, otp: slot.otp, hwid, csr: devices.csr(hwid, keyArgs) },
  });
  assert.equal(claim.status, 201, claim.text);
  writeFileSync(devices.file(`${hwid}.pem`), claim.body.certificate);
  return claim.body;
}

pki.ca('root');
pki.ca('intermediate', { issuer: 'root' });
pki.ca('other-root');
pki.ca('sibling', { issuer: 'root' });
pki.ca('leaf', { issuer: 'intermediate', basicConstraints: 'critical,CA:FALSE' });
pki.ca('no-sign', { issuer: 'root', keyUsage: 'critical,cRLSign,digitalSignature' });
pki.ca('expired', { issuer: 'root', dates: { start: '20200101000000Z', end: '20210101000000Z' } });
pki.ca('future', { issuer: 'root', dates: { start: '20400101000000Z', end: '20410101000000Z' } });
pki.ca('weak', { issuer: 'root', keyArgs: ['-newkey', 'rsa:1024'] });
pki.ca('edwards', { issuer: 'root', keyArgs: ['-newkey', 'ed25519'] });
pki.ca('tight-root', { basicConstraints: 'critical,CA:TRUE,pathlen:0' });
pki.ca('under-tight', { issuer: 'tight-root' });
pki.ca('rsa-intermediate', { issuer: 'root', keyArgs: ['-newkey', 'rsa:2048'] });
pki.ca('p384-intermediate', { issuer: 'root', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'] });
const secKey = pki.traditionalKey('intermediate', 'ec');
const good = () => ({ certificate: pki.read('intermediate.pem'), key: secKey, chain: pki.read('root.pem') });
const intermediate = (name: string) => ({
  certificate: pki.read(`${name}.pem`),
  key: pki.read(`${name}.key`),
  chain: pki.read('root.pem'),
});

eachDatabase(
  'Importing an intermediate CA: PUT /api/v1/ca',
  (h) => {
    test('a bad import is refused naming what is wrong, and neither the CA nor the event log changes', async () => {
      const before = await h().request('GET', '/api/v1/ca', { token: null });
      assert.equal(before.body.imported, false);
      assert.equal(before.body.subject, 'CN=muster CA');
      const operator = await h().userToken('operator', 'ca-operator');
      const since = await lastEventId(h());
      const cases: [string, Record<string, string>, string, RegExp][] = [
        ['a key of another certificate', { ...good(), key: pki.read('root.key') }, '/key', /does not belong to the certificate/],
        ['a certificate that is no CA', intermediate('leaf'), '/certificate', /is not a CA/],
        ['a CA that may not sign certificates', intermediate('no-sign'), '/certificate', /may not sign certificates \(keyCertSign\)/],
        ['an expired CA', intermediate('expired'), '/certificate', /valid from 2020-01-01.* to 2021-01-01.*, not now/],
        ['a CA not valid yet', intermediate('future'), '/certificate', /valid from 2040-01-01.*, not now/],
        ['an RSA key of 1024 bits', intermediate('weak'), '/key', /ECDSA P-256 or P-384, or RSA of 2048 bits or more/],
        ['an Ed25519 key', intermediate('edwards'), '/key', /ECDSA P-256 or P-384, or RSA of 2048 bits or more/],
        ['a chain of another root', { ...good(), chain: pki.read('other-root.pem') }, '/chain/0', /other-root did not sign/],
        [
          'a root whose path length leaves no room for it',
          { ...intermediate('under-tight'), chain: pki.read('tight-root.pem') },
          '/chain/0',
          /allows 0 CA certificate\(s\) below it, not 1/,
        ],
        ['a key that is no key', { ...good(), key: 'not a key' }, '/key', /not a readable private key/],
        ['a certificate that is no certificate', { ...good(), certificate: 'garbage' }, '/certificate', /exactly one PEM certificate/],
        [
          'a PEM block that is no certificate',
          { ...good(), certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
          '/certificate',
          /not a readable X.509 certificate/,
        ],
        [
          'the chain in the certificate field',
          { ...good(), certificate: pki.read('intermediate.pem') + pki.read('root.pem') },
          '/certificate',
          /exactly one/,
        ],
        ['a chain with no certificate', { ...good(), chain: 'garbage' }, '/chain', /no PEM certificate/],
      ];
      for (const [what, body, path, message] of cases) {
        const reply = await h().request('PUT', '/api/v1/ca', { body });
        const paths = assertProblem(reply, 'validation_failed');
        assert.ok(paths.includes(path), `${what}: ${path} not in ${paths.join(', ')}`);
        assert.match(reply.body.detail, message, what);
        assert.ok(!reply.text.includes('PRIVATE KEY'), `${what}: the key is not echoed`);
      }
      assertProblem(await h().request('PUT', '/api/v1/ca', { body: { certificate: good().certificate } }), 'validation_failed');
      assertProblem(await h().request('PUT', '/api/v1/ca', { body: { ...good(), key: 'x'.repeat(70_000) } }), 'payload_too_large');
      assertProblem(await h().request('PUT', '/api/v1/ca', { body: { ...good(), certificate: 'x'.repeat(20_000) } }), 'validation_failed');
      assertProblem(await h().request('PUT', '/api/v1/ca', { token: operator, body: good() }), 'forbidden');
      assertProblem(await h().request('PUT', '/api/v1/ca', { token: null, body: good() }), 'unauthenticated');

      assert.deepEqual((await h().request('GET', '/api/v1/ca', { token: null })).body, before.body, 'the CA is as it was');
      assert.deepEqual(await eventsAfter(h(), since), [], 'nothing was recorded');
    });

    test('an imported intermediate issues what openssl verifies against the root, signs the CRL, and mutual TLS takes it at once', async () => {
      const tls = h().muster.tlsAddress;
      assert.ok(tls, 'the HTTPS listener is up');
      const base = `https://127.0.0.1:${tls.port}`;
      const musterCa = (await h().request('GET', '/api/v1/ca', { token: null })).body;
      // The listener's own certificate comes from the CA it started with.
      writeFileSync(pki.file('muster-ca.pem'), musterCa.certificate);
      const serverCa = pki.file('muster-ca.pem');
      await h().request('POST', '/api/v1/fleets', { body: { name: 'pki' } });
      const earlier = await claimDevice(h().request, 'pki', 'pki-earlier');

      const imported = await h().request('PUT', '/api/v1/ca', { body: good() });
      assert.equal(imported.status, 200, imported.text);
      assert.ok(!imported.text.includes('PRIVATE KEY'), 'the key is never answered');
      const { certificate, chain, ...rest } = imported.body;
      assert.deepEqual(rest, {
        subject: 'CN=intermediate',
        fingerprint_sha256: fingerprint('intermediate.pem'),
        not_before: opensslDate('intermediate.pem', 'startdate'),
        not_after: opensslDate('intermediate.pem', 'enddate'),
        imported: true,
      });
      assert.deepEqual(
        [certificate, ...chain].map(der),
        [pki.read('intermediate.pem'), pki.read('intermediate.pem'), pki.read('root.pem')].map(der),
      );
      assert.deepEqual((await h().request('GET', '/api/v1/ca', { token: null })).body, imported.body);
      const events = await h().request('GET', '/api/v1/events?type=ca.imported');
      assert.deepEqual(
        events.body.items.map((e: { actor: string; data: unknown }) => ({ actor: e.actor, data: e.data })),
        [
          {
            actor: events.body.items[0].actor,
            data: {
              subject: 'CN=intermediate',
              fingerprint_sha256: fingerprint('intermediate.pem'),
              previous_fingerprint_sha256: musterCa.fingerprint_sha256,
              chain: ['CN=root'],
            },
          },
        ],
      );
      assert.match(events.body.items[0].actor, /admin/);
      assert.ok(!events.text.includes('PRIVATE KEY'));

      const device = await claimDevice(h().request, 'pki', 'pki-device-1');
      assert.deepEqual(device.ca_chain, imported.body.chain, 'the chain: intermediate, then root');
      verifiesAgainstRoot(device.certificate, device.ca_chain[0]);
      const [issued] = (await h().request('GET', `/api/v1/machines/${device.machine_id}/certificates`)).body;
      assert.equal(device.renew_after, twoThirds(issued));

      // Without a restart: the device of the new CA and the one of the old both reach their records.
      const self = await curl(`${base}/api/v1/device/self`, serverCa, { cert: devices.file('pki-device-1') });
      assert.equal(self.status, 200, self.body);
      assert.equal(JSON.parse(self.body).machine_id, device.machine_id);
      const old = await curl(`${base}/api/v1/device/self`, serverCa, { cert: devices.file('pki-earlier') });
      assert.equal(old.status, 200, old.body);
      assert.equal(JSON.parse(old.body).machine_id, earlier.machine_id);
      const renewed = await curl(`${base}/api/v1/device/certificate`, serverCa, {
        cert: devices.file('pki-earlier'),
        body: { csr: devices.csr('pki-earlier-next') },
      });
      assert.equal(renewed.status, 201, renewed.body);
      const next = JSON.parse(renewed.body);
      assert.equal(next.renew_after, twoThirds(next));
      verifiesAgainstRoot(next.certificate, device.ca_chain[0]);

      // The listener trusts the root above the intermediate, so a certificate another CA of that root made with a
      // device's serial passes the handshake; muster compares the whole certificate and refuses it.
      const serial = openssl('x509', '-in', devices.file('pki-device-1.pem'), '-noout', '-serial').trim().split('=')[1];
      devices.csr('forged');
      openssl(
        'x509',
        '-req',
        '-in',
        devices.file('forged.csr'),
        '-CA',
        pki.file('sibling.pem'),
        '-CAkey',
        pki.file('sibling.key'),
        '-set_serial',
        `0x${serial}`,
        '-days',
        '1',
        '-out',
        devices.file('forged.pem'),
      );
      // With the sibling after it, so that the listener can build the path to the root it trusts.
      writeFileSync(devices.file('forged.pem'), readFileSync(devices.file('forged.pem'), 'utf8') + pki.read('sibling.pem'));
      const forged = await curl(`${base}/api/v1/device/self`, serverCa, { cert: devices.file('forged') });
      assert.equal(forged.status, 401, forged.body);
      assert.equal(JSON.parse(forged.body).code, 'unauthenticated');

      const retired = await h().request('POST', `/api/v1/machines/${device.machine_id}/transition`, { body: { to: 'retired' } });
      assert.equal(retired.status, 200, retired.text);
      assert.equal((await curl(`${base}/api/v1/device/self`, serverCa, { cert: devices.file('pki-device-1') })).status, 401);
      writeFileSync(pki.file('muster.crl'), (await h().request('GET', '/api/v1/ca/crl', { token: null })).text);
      writeFileSync(pki.file('chain.pem'), device.ca_chain[0]);
      assert.match(openssl('crl', '-in', pki.file('muster.crl'), '-noout', '-issuer'), /CN\s*=\s*intermediate/);
      const checked = await new Promise<string>((resolve, reject) =>
        execFile(
          testTool('openssl').path,
          ['crl', '-in', pki.file('muster.crl'), '-CAfile', pki.file('chain.pem'), '-noout'],
          (error, _stdout, stderr) => (error ? reject(error) : resolve(stderr)),
        ),
      );
      assert.match(checked, /verify OK/, 'the intermediate signed the CRL');
      writeFileSync(pki.file('all.pem'), pki.read('root.pem') + device.ca_chain[0]);
      writeFileSync(pki.file('device.pem'), device.certificate);
      assert.throws(
        () => openssl('verify', '-crl_check', '-CRLfile', pki.file('muster.crl'), '-CAfile', pki.file('all.pem'), pki.file('device.pem')),
        (error: Error & { stderr?: string }) => /certificate revoked/.test(String(error.stderr)),
      );
    });

    test('RSA (PKCS#1) and P-384 intermediates issue certificates and CRLs that openssl verifies', async () => {
      const cases = [
        { name: 'rsa-intermediate', key: pki.traditionalKey('rsa-intermediate', 'rsa'), header: 'BEGIN RSA PRIVATE KEY' },
        { name: 'p384-intermediate', key: pki.read('p384-intermediate.key'), header: 'BEGIN PRIVATE KEY' },
      ];
      for (const { name, key, header } of cases) {
        assert.ok(key.includes(header), `${name}: ${header}`);
        const imported = await h().request('PUT', '/api/v1/ca', { body: { ...intermediate(name), key } });
        assert.equal(imported.status, 200, imported.text);
        assert.equal(imported.body.subject, `CN=${name}`);
        const device = await claimDevice(h().request, 'pki', `${name}-device`, ['-newkey', 'rsa:2048']);
        verifiesAgainstRoot(device.certificate, pki.read(`${name}.pem`));
        writeFileSync(pki.file(`${name}.crl`), (await h().request('GET', '/api/v1/ca/crl', { token: null })).text);
        assert.match(openssl('crl', '-in', pki.file(`${name}.crl`), '-noout', '-issuer'), new RegExp(`CN\\s*=\\s*${name}`));
      }
    });
  },
  { env: { MUSTER_TLS_LISTEN: '127.0.0.1:0' } },
);

// Replicas share PostgreSQL only: an import through one reaches the other through its event.
if (databaseKinds.includes('postgres')) {
  describe('An imported CA on two servers sharing one PostgreSQL', () => {
    let harness: Harness;
    let second: Muster;
    before(async () => {
      harness = await startHarness('postgres');
      second = await createMuster(testConfig(harness.database));
      await second.listen();
    });
    after(async () => {
      await second?.close();
      await harness?.muster.close();
      await harness?.database.drop();
    });

    test('a CA imported through one server issues through the other at once', async () => {
      const other = {
        async request(method: string, url: string, options: { body?: unknown; token?: string | null } = {}) {
          const token = options.token === undefined ? harness.admin : options.token;
          const res = await second.app.inject({
            method: method as 'GET',
            url,
            headers: token ? { authorization: `Bearer ${token}` } : {},
            ...(options.body === undefined ? {} : { payload: options.body as object }),
          });
          return { status: res.statusCode, headers: res.headers, body: res.json(), text: res.body };
        },
      };
      assert.equal((await harness.request('PUT', '/api/v1/ca', { body: good() })).status, 200);
      let seen = '';
      for (let i = 0; i < 100 && seen !== 'CN=intermediate'; i++) {
        seen = (await other.request('GET', '/api/v1/ca', { token: null })).body.subject;
        if (seen !== 'CN=intermediate') await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(seen, 'CN=intermediate', 'the other server took the imported CA');
      assert.equal((await other.request('POST', '/api/v1/fleets', { body: { name: 'twin-pki' } })).status, 201);
      const device = await claimDevice(other.request, 'twin-pki', 'twin-pki-device');
      verifiesAgainstRoot(device.certificate, device.ca_chain[0]);
    });
  });
}
