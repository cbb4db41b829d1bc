import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

// An operator's own PKI: a root made with openssl, an intermediate it signs, imported into muster; device
// certificates then chain to the root, as openssl verify shows, and the CRL is signed by the intermediate.

interface Pki {
  file(name: string): string;
  read(name: string): string;
}

/** A root and what it signs, made with the openssl CLI: `ca NAME` makes NAME.key and NAME.pem. */
function makePki(
  label: string,
): Pki & { ca(name: string, options: { issuer?: string; keyArgs?: string[]; ext?: string; days?: string }): void } {
  const keys = deviceKeys(label);
  const file = keys.file;
  const read = (name: string) => readFileSync(file(name), 'utf8');
  return {
    file,
    read,
    ca(name, { issuer, keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ext = 'critical,CA:TRUE', days = '365' }) {
      const config = file(`${name}.cnf`);
      writeFileSync(
        config,
        `[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=${ext}\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\n`,
      );
      if (!issuer) {
        openssl(
          'req',
          '-x509',
          ...keyArgs,
          '-nodes',
          '-keyout',
          file(`${name}.key`),
          '-out',
          file(`${name}.pem`),
          '-subj',
          `/CN=${name}`,
          '-days',
          days,
          '-config',
          config,
          '-extensions',
          'v3',
        );
        return;
      }
      openssl(
        'req',
        '-new',
        ...keyArgs,
        '-nodes',
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.csr`),
        '-subj',
        `/CN=${name}`,
        '-config',
        config,
      );
      openssl(
        'x509',
        '-req',
        '-in',
        file(`${name}.csr`),
        '-CA',
        file(`${issuer}.pem`),
        '-CAkey',
        file(`${issuer}.key`),
        '-CAcreateserial',
        '-out',
        file(`${name}.pem`),
        '-days',
        days,
        '-extfile',
        config,
        '-extensions',
        'v3',
      );
    },
  };
}

eachDatabase('Importing an intermediate CA: PUT /api/v1/ca', (h) => {
  const pki = makePki('ca-import');
  pki.ca('root', {});
  pki.ca('intermediate', { issuer: 'root' });
  pki.ca('other-root', {});
  pki.ca('leaf', { issuer: 'intermediate', ext: 'critical,CA:FALSE' });
  pki.ca('rsa-intermediate', { issuer: 'root', keyArgs: ['-newkey', 'rsa:2048'] });
  const good = () => ({ certificate: pki.read('intermediate.pem'), key: pki.read('intermediate.key'), chain: pki.read('root.pem') });

  test('bad imports are refused with what is wrong, and the CA stays as it was', async () => {
    const before = (await h().request('GET', '/api/v1/ca')).body;
    assert.equal(before.imported, false);
    const cases: [Record<string, string>, string][] = [
      [{ ...good(), key: pki.read('root.key') }, '/key'],
      [{ ...good(), certificate: pki.read('leaf.pem'), key: pki.read('leaf.key') }, '/certificate'],
      [{ ...good(), chain: pki.read('other-root.pem') }, '/chain/0'],
      [{ ...good(), key: 'not a key' }, '/key'],
      [{ ...good(), certificate: 'garbage' }, '/certificate'],
      [{ ...good(), certificate: pki.read('intermediate.pem') + pki.read('root.pem') }, '/certificate'],
    ];
    for (const [body, path] of cases) {
      const paths = assertProblem(await h().request('PUT', '/api/v1/ca', { body }), 'validation_failed');
      assert.ok(paths.includes(path), `${path}: ${paths.join(', ')}`);
    }
    assertProblem(await h().request('PUT', '/api/v1/ca', { body: { ...good(), key: 'x'.repeat(70_000) } }), 'payload_too_large');
    const operator = await h().userToken('operator', 'ca-operator');
    assertProblem(await h().request('PUT', '/api/v1/ca', { token: operator, body: good() }), 'forbidden');
    const after = (await h().request('GET', '/api/v1/ca')).body;
    assert.equal(after.fingerprint_sha256, before.fingerprint_sha256, 'nothing changed');
  });

  test('an imported intermediate issues device certificates that openssl verifies against the root, and signs the CRL', async () => {
    const imported = await h().request('PUT', '/api/v1/ca', { body: good() });
    assert.equal(imported.status, 200, imported.text);
    assert.equal(imported.body.subject, 'CN=intermediate');
    assert.equal(imported.body.imported, true);
    assert.equal(imported.body.chain.length, 2);
    assert.ok(!imported.text.includes('PRIVATE KEY'), 'the key is never answered');
    const events = await h().request('GET', '/api/v1/events?type=ca.imported');
    assert.equal(events.body.items[0].data.subject, 'CN=intermediate');
    assert.ok(!events.text.includes('PRIVATE KEY'));

    await h().request('POST', '/api/v1/fleets', { body: { name: 'pki' } });
    const [slot] = (await h().request('POST', '/api/v1/fleets/pki/slots', { body: { count: 1 } })).body.slots;
    const keys = deviceKeys('ca-import-device');
    const claim = await h().request('POST', '/api/v1/claims/otp', {
      token: null,
      body: { fleet: 'pki', otp: slot.otp, hwid: 'pki-device-1', csr: keys.csr('device') },
    });
    assert.equal(claim.status, 201, claim.text);
    assert.equal(claim.body.ca_chain.length, 2, 'the chain: intermediate, then root');
    writeFileSync(pki.file('device.pem'), claim.body.certificate);
    writeFileSync(pki.file('chain.pem'), claim.body.ca_chain[0]);
    assert.match(openssl('verify', '-CAfile', pki.file('root.pem'), '-untrusted', pki.file('chain.pem'), pki.file('device.pem')), /: OK/);

    const revoked = await h().request('POST', `/api/v1/machines/${claim.body.machine_id}/transition`, { body: { to: 'retired' } });
    assert.equal(revoked.status, 200, revoked.text);
    const crl = await h().request('GET', '/api/v1/ca/crl');
    writeFileSync(pki.file('muster.crl'), crl.text);
    const text = openssl('crl', '-in', pki.file('muster.crl'), '-CAfile', pki.file('chain.pem'), '-noout', '-text');
    assert.match(text, /Issuer: CN\s*=\s*intermediate/);
    writeFileSync(pki.file('all.pem'), pki.read('root.pem') + claim.body.ca_chain[0]);
    // openssl finds the revocation only once the CRL's signature checks out against the intermediate.
    assert.throws(
      () => openssl('verify', '-crl_check', '-CRLfile', pki.file('muster.crl'), '-CAfile', pki.file('all.pem'), pki.file('device.pem')),
      (error: Error & { stderr?: string }) => /certificate revoked/.test(String(error.stderr)),
    );
  });

  test('an RSA intermediate works too', async () => {
    const imported = await h().request('PUT', '/api/v1/ca', {
      body: { certificate: pki.read('rsa-intermediate.pem'), key: pki.read('rsa-intermediate.key'), chain: pki.read('root.pem') },
    });
    assert.equal(imported.status, 200, imported.text);
    const [slot] = (await h().request('POST', '/api/v1/fleets/pki/slots', { body: { count: 1 } })).body.slots;
    const keys = deviceKeys('ca-import-rsa');
    const claim = await h().request('POST', '/api/v1/claims/otp', {
      token: null,
      body: { fleet: 'pki', otp: slot.otp, hwid: 'pki-device-2', csr: keys.csr('device') },
    });
    assert.equal(claim.status, 201, claim.text);
    writeFileSync(pki.file('device2.pem'), claim.body.certificate);
    writeFileSync(pki.file('rsa-chain.pem'), claim.body.ca_chain[0]);
    assert.match(
      openssl('verify', '-CAfile', pki.file('root.pem'), '-untrusted', pki.file('rsa-chain.pem'), pki.file('device2.pem')),
      /: OK/,
    );
  });
});
