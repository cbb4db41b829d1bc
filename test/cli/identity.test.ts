import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openssl } from '../support/device-keys.ts';
import { type Harness, startHarness } from '../support/harness.ts';
import { testPki } from '../support/pki.ts';
import { runCli, tempDir } from './cli-process.ts';

// The CLI side of seed 001: allocate slots with their passwords in a private file, see them claimed, and export
// the CA and CRL that openssl reads.

describe('muster fleet allocate, fleet slots and ca against a real server', () => {
  let h: Harness;
  let env: Record<string, string>;
  const dir = tempDir('muster-identity-');
  const cli = (args: string[]) => runCli(args, { env });

  before(async () => {
    h = await startHarness('sqlite');
    env = { MUSTER_SERVER: `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`, MUSTER_TOKEN: h.admin };
    assert.equal((await cli(['fleet', 'create', 'pis'])).code, 0);
  });
  after(async () => {
    await h?.muster.close();
    await h?.database.drop();
  });

  test('allocate writes the new passwords to a 0600 file, one per line, and refuses to overwrite it', async () => {
    const file = join(dir, 'otps.txt');
    const result = await cli(['fleet', 'allocate', 'pis', '3', '--otps-out', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^HOSTNAME +TUNNEL PORT\npis-1 +20000\npis-2 +20001\npis-3 +20002\n\n3 one-time password\(s\) written to/);
    const otps = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(otps.length, 3);
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
    assert.ok(
      otps.every((otp) => !result.stdout.includes(otp)),
      'the passwords are not printed when they go to a file',
    );
    const again = await cli(['fleet', 'allocate', 'pis', '1', '--otps-out', file]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /EEXIST|exists/);

    const claimed = await h.request('POST', '/api/v1/claims/otp', { token: null, body: { fleet: 'pis', otp: otps[1], hwid: 'HW-CLI-1' } });
    assert.equal(claimed.status, 201, claimed.text);
    const slots = await cli(['fleet', 'slots', 'pis']);
    assert.equal(slots.code, 0, slots.stderr);
    assert.match(slots.stdout, /^pis-2 +20001 +claimed +HW-CLI-1 +m_\w+ +\S+ +127\.0\.0\.1$/m);
    assert.match(slots.stdout, /^pis-3 +20002 +unclaimed/m);
    for (const otp of otps) assert.ok(!slots.stdout.includes(otp));
  });

  test('bad counts are a usage error with exit 2', async () => {
    for (const count of ['0', '-1', 'ten', '10001']) {
      const result = await cli(['fleet', 'allocate', 'pis', count]);
      assert.equal(result.code, 2, `${count}: ${result.stderr}`);
    }
  });

  test('ca show prints the fingerprint openssl computes; ca export writes the certificate and the CRL', async () => {
    const pem = join(dir, 'ca.pem');
    assert.equal((await cli(['ca', 'export', '--out', pem])).code, 0);
    const fingerprint = openssl('x509', '-in', pem, '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
    const shown = await cli(['ca', 'show']);
    assert.match(shown.stdout, new RegExp(`^fingerprint: +SHA256:${fingerprint}$`, 'm'));
    assert.match(shown.stdout, /^subject: +CN=muster CA$/m);
    const crl = join(dir, 'ca.crl');
    assert.equal((await cli(['ca', 'export', '--crl', '--out', crl])).code, 0);
    assert.match(openssl('crl', '-in', crl, '-noout', '-issuer'), /muster CA/);
    assert.equal((await cli(['ca', 'revoke', 'abcdef'])).code, 3);
  });

  test('enrollment-token create prints the secret once; a manual claim is approved with machine approve; revoke refuses it', async () => {
    const created = await cli(['enrollment-token', 'create', 'img-1', '--fleet', 'pis', '--label', 'site=oslo', '--max-uses', '5']);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^mse_/);
    assert.match(created.stderr, /shown this once/);
    const pending = await h.request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid: 'HW-CLI-TOK' } });
    assert.equal(pending.body.status, 'pending');
    const listed = await cli(['enrollment-token', 'ls']);
    assert.match(listed.stdout, /^img-1 +pis +rules +1\/5 /m);
    assert.ok(!listed.stdout.includes(token));
    const approved = await cli(['machine', 'approve', 'hwid:HW-CLI-TOK']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /^approved m_\w+ \(pis-\d+\)$/m);
    assert.equal(
      (await h.request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid: 'HW-CLI-TOK' } })).body.status,
      'approved',
    );
    assert.equal((await cli(['enrollment-token', 'revoke', 'img-1'])).code, 0);
    const refused = await h.request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid: 'HW-CLI-TOK-2' } });
    assert.equal(refused.status, 403);
    assert.equal((await cli(['enrollment-token', 'revoke', 'nope'])).code, 3);
  });

  test('fleet ip-pool sets a range and shows who holds which address', async () => {
    const set = await cli(['fleet', 'ip-pool', 'pis', '10.30.0.0/29']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^range: +10\.30\.0\.0\/29$/m);
    assert.match(set.stdout, /^allocated: +0 of 6$/m);
    assert.equal((await cli(['fleet', 'ip-pool', 'pis', '10.30.0.0/40'])).code, 2);
    assert.equal((await cli(['fleet', 'create', 'six'])).code, 0);
    const six = await cli(['fleet', 'ip-pool', 'six', 'FD00:30:0:0::/126']);
    assert.equal(six.code, 0, six.stderr);
    assert.match(six.stdout, /^range: +fd00:30::\/126$/m);
    assert.match(six.stdout, /^allocated: +0 of 3$/m);
    const wide = await cli(['fleet', 'ip-pool', 'six', 'fd00:30::/64']);
    assert.match(wide.stdout, /^allocated: +0 of about 1\.84e\+19$/m);
    const mapped = await cli(['fleet', 'ip-pool', 'six', '::ffff:10.0.0.0/120']);
    assert.equal(mapped.code, 2);
    assert.match(mapped.stderr, /is not an IPv4 range from \/8 to \/32 .* or an IPv6 range from \/64 to \/128/);
  });

  // Last: from here on the intermediate issues.
  test('ca import makes an intermediate the issuer, and ca export then writes it with the chain; a bad one exits 2', async () => {
    const pki = testPki('cli-ca-import');
    pki.ca('root');
    pki.ca('intermediate', { issuer: 'root' });
    const args = ['ca', 'import', '--cert', pki.file('intermediate.pem'), '--chain', pki.file('root.pem')];
    const wrongKey = await cli([...args, '--key', pki.file('root.key')]);
    assert.equal(wrongKey.code, 2, wrongKey.stderr);
    assert.match(wrongKey.stderr, /the key does not belong to the certificate/);
    assert.match((await cli(['ca', 'show'])).stdout, /^subject: +CN=muster CA$/m, 'nothing changed');

    const imported = await cli([...args, '--key', pki.file('intermediate.key')]);
    assert.equal(imported.code, 0, imported.stderr);
    const fingerprint = openssl('x509', '-in', pki.file('intermediate.pem'), '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
    assert.equal(imported.stdout, `muster now issues from CN=intermediate (SHA-256 ${fingerprint})\n`);
    assert.match(imported.stderr, /Devices renew to get certificates from it: after a restart/);
    assert.match((await cli(['ca', 'show'])).stdout, /^subject: +CN=intermediate$/m);
    const exported = join(dir, 'chain.pem');
    assert.equal((await cli(['ca', 'export', '--out', exported])).code, 0);
    assert.match(openssl('storeutl', '-noout', '-certs', exported), /Total found: 2/, 'the intermediate, then the root, both readable');
    assert.match(openssl('verify', '-CAfile', pki.file('root.pem'), exported), /: OK/);

    const missing = await cli(['ca', 'import', '--cert', join(dir, 'nope.pem'), '--key', pki.file('intermediate.key')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^muster: no such file: .*nope\.pem$/m);
  });
});
