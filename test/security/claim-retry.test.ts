import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertProblem } from '../api/assertions.ts';
import { deviceKeys } from '../support/device-keys.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';

// Finding 1 of the trust issue, and the claim lifecycle bugs found with it: a token is baked into every image and a
// hardware id is not secret, so a claim's retry gets an identity only with proof of the key the device claimed with.

const keys = deviceKeys('claim-retry');

/** A profile whose file and agent command hold the machine's secret. */
const spec = (version: string) => ({
  description: `secret-bearing ${version}`,
  secret: { bytes: 16, encoding: 'hex' },
  files: [{ path: 'etc/device.conf', mode: '0600', template: `VERSION=${version}\nPASSWORD={{ secret }}\n` }],
  agent: { commands: ['systemctl restart loader'] },
});

const tokenClaim = (h: () => Harness, body: Record<string, unknown>, remoteAddress = '203.0.113.50') =>
  h().request('POST', '/api/v1/claims/token', { token: null, body, remoteAddress });
const otpClaim = (h: () => Harness, body: Record<string, unknown>, remoteAddress = '203.0.113.60') =>
  h().request('POST', '/api/v1/claims/otp', { token: null, body, remoteAddress });

/** The machine's secret, as its device got it in the first answer. */
const secretOf = (answer: { configuration: { files: { content: string }[] } }) =>
  /PASSWORD=([0-9a-f]{32})/.exec(answer.configuration.files[0].content)?.[1] as string;

/** What a retry without proof may learn: its status and how to prove itself, nothing of the machine. */
function assertStatusOnly(reply: { status: number; body: Record<string, unknown>; text: string }, status: string, secret?: string) {
  assert.deepEqual(Object.keys(reply.body).sort(), ['detail', 'proof_required', 'server_time', 'status'], reply.text);
  assert.equal(reply.body.status, status);
  if (secret) assert.ok(!reply.text.includes(secret), 'the secret is not in the answer');
  assert.doesNotMatch(reply.text, /BEGIN CERTIFICATE|m_[0-9A-Za-z]{10}/);
}

eachDatabase('trust: a claim retry gets an identity only with proof of the claim’s key', (h) => {
  test('a revoked token and a known hwid, from anywhere, without proof: status only, never the files or the secret', async () => {
    assert.equal((await h().request('PUT', '/api/v1/profiles/dev', { body: { spec: spec('1') } })).status, 200);
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'img', approval: 'auto', profile: 'dev' } });
    const csr = keys.csr('dev1');
    const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-TRUST-1', csr });
    assert.equal(first.status, 201, first.text);
    const secret = secretOf(first.body);
    assert.match(secret, /^[0-9a-f]{32}$/);
    assert.equal((await h().request('POST', '/api/v1/enrollment-tokens/img/revoke')).status, 200);

    // The attack as it worked: the revoked token, the hwid, no CSR, another address.
    assertStatusOnly(await tokenClaim(h, { token: made.body.token, hwid: 'HW-TRUST-1' }, '198.51.100.99'), 'approved', secret);
    // A CSR of the attacker's own key: told the hwid was claimed with another key, and nothing else.
    const other = keys.csr('attacker');
    const foreign = await tokenClaim(h, {
      token: made.body.token,
      hwid: 'HW-TRUST-1',
      csr: other,
      proof: keys.proof('attacker', 'HW-TRUST-1'),
    });
    assertProblem(foreign, 'conflict');
    assert.ok(!foreign.text.includes(secret));
    // A proof signed by another key, a stale proof, a proof for another hwid: status only.
    const stale = new Date(Date.now() - 10 * 60_000).toISOString();
    for (const body of [
      { csr, proof: keys.proof('attacker', 'HW-TRUST-1') },
      { csr, proof: keys.proof('dev1', 'HW-TRUST-1', stale) },
      { csr, proof: keys.proof('dev1', 'HW-TRUST-2') },
      { csr, proof: { time: new Date().toISOString(), signature: 'AAAAAAAAAAAAAAAAAAAAAAAA' } },
    ]) {
      assertStatusOnly(await tokenClaim(h, { token: made.body.token, hwid: 'HW-TRUST-1', ...body }, '198.51.100.99'), 'approved', secret);
    }
    // The device itself, with proof, still collects its identity after the revocation.
    const proven = await tokenClaim(h, { token: made.body.token, hwid: 'HW-TRUST-1', proof: keys.proof('dev1', 'HW-TRUST-1') });
    assert.equal(proven.status, 200, proven.text);
    assert.deepEqual(proven.body, first.body);
    // A new claim on the revoked token gets no content.
    const fresh = await tokenClaim(h, { token: made.body.token, hwid: 'HW-TRUST-NEW', csr: keys.csr('new1') });
    assertProblem(fresh, 'invalid_claim');
    assert.doesNotMatch(fresh.text, /PASSWORD|BEGIN CERTIFICATE/);
  });

  test('a one-time password’s retry without proof learns only its status; a claim without a CSR gets its files once', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'otp' } })).status, 201);
    await h().request('PUT', '/api/v1/rules/otp-dev', { body: { door: 'claim', action: 'discover', profile: 'dev', priority: 5 } });
    const slots = (await h().request('POST', '/api/v1/fleets/otp/slots', { body: { count: 2 } })).body.slots;
    const withKey = await otpClaim(h, { fleet: 'otp', otp: slots[0].otp, hwid: 'HW-OTP-1', csr: keys.csr('otp1') });
    assert.equal(withKey.status, 201, withKey.text);
    const secret = secretOf(withKey.body);
    assertStatusOnly(await otpClaim(h, { fleet: 'otp', otp: slots[0].otp, hwid: 'HW-OTP-1' }, '198.51.100.98'), 'approved', secret);
    const proven = await otpClaim(h, { fleet: 'otp', otp: slots[0].otp, hwid: 'HW-OTP-1', proof: keys.proof('otp1', 'HW-OTP-1') });
    assert.deepEqual(proven.body, withKey.body);

    const keyless = await otpClaim(h, { fleet: 'otp', otp: slots[1].otp, hwid: 'HW-OTP-2' });
    assert.equal(keyless.status, 201);
    const keylessSecret = secretOf(keyless.body);
    const again = await otpClaim(h, { fleet: 'otp', otp: slots[1].otp, hwid: 'HW-OTP-2', proof: keys.proof('otp1', 'HW-OTP-2') });
    assertStatusOnly(again, 'approved', keylessSecret);
    assert.equal(again.body.proof_required, false);
  });

  test('a pending claim on a one-use token, used up, still collects its approval with proof; nobody else does', async () => {
    const made = await h().request('POST', '/api/v1/enrollment-tokens', {
      body: { name: 'one-use', approval: 'manual', profile: 'dev', max_uses: 1 },
    });
    const pending = await tokenClaim(h, { token: made.body.token, hwid: 'HW-ONE-1', csr: keys.csr('one1') });
    assert.equal(pending.status, 201);
    assert.equal(pending.body.status, 'pending');
    assertProblem(await tokenClaim(h, { token: made.body.token, hwid: 'HW-ONE-2', csr: keys.csr('one2') }), 'invalid_claim');
    const approved = await h().request('POST', `/api/v1/machines/${pending.body.machine_id}/approve`);
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.configuration.files, undefined, 'the operator is not sent the device’s secret');
    assertStatusOnly(await tokenClaim(h, { token: made.body.token, hwid: 'HW-ONE-1' }), 'approved');
    const collected = await tokenClaim(h, { token: made.body.token, hwid: 'HW-ONE-1', proof: keys.proof('one1', 'HW-ONE-1') });
    assert.equal(collected.status, 200, collected.text);
    assert.equal(collected.body.certificate, approved.body.certificate);
    assert.match(secretOf(collected.body), /^[0-9a-f]{32}$/);
  });

  test('kept claim answers hold no secret: nothing rendered is stored (finding 5)', async () => {
    const stored = [
      ...(await h().muster.db.kysely.selectFrom('token_claims').select('answer').execute()),
      ...(await h().muster.db.kysely.selectFrom('fleet_slots').select('answer').execute()),
    ]
      .map((r) => r.answer ?? '')
      .join('\n');
    assert.ok(stored.includes('BEGIN CERTIFICATE'), 'the certificates are kept');
    assert.doesNotMatch(stored, /PASSWORD|systemctl|files|configuration/);
  });

  test('after a rollout, a retried claim’s profile version and files agree (version 2 both)', async () => {
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'roll', approval: 'auto', profile: 'dev' } });
    const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-ROLL-1', csr: keys.csr('roll1'), facts: {} });
    assert.equal(first.body.configuration.profile.version, 1);
    assert.equal((await h().request('PUT', '/api/v1/profiles/dev', { body: { spec: spec('2') } })).status, 200);
    const rolled = await h().request('POST', '/api/v1/profiles/dev/rollout', { body: {} });
    assert.equal(rolled.status, 200, rolled.text);
    const retry = await tokenClaim(h, { token: made.body.token, hwid: 'HW-ROLL-1', proof: keys.proof('roll1', 'HW-ROLL-1') });
    assert.equal(retry.body.configuration.profile.version, 2);
    assert.match(retry.body.configuration.files[0].content, /^VERSION=2\n/);
    assert.equal(secretOf(retry.body), secretOf(first.body), 'the machine keeps its secret across versions');
  });

  test('a retired machine’s claim answers 410 machine_retired, never approved with a revoked certificate', async () => {
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'ret', approval: 'auto' } });
    const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RETIRE-1', csr: keys.csr('ret1') });
    assert.equal(first.status, 201);
    const retired = await h().request('POST', `/api/v1/machines/${first.body.machine_id}/transition`, { body: { to: 'retired' } });
    assert.equal(retired.status, 200, retired.text);
    for (const proof of [undefined, keys.proof('ret1', 'HW-RETIRE-1')]) {
      const again = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RETIRE-1', csr: keys.csr('ret1b'), proof });
      assertProblem(again, 'machine_retired');
      assert.equal(again.status, 410);
      assert.match(again.body.detail, /was retired at .*claim again with a new one-time password or enrollment token/);
      assert.doesNotMatch(again.text, /BEGIN CERTIFICATE/);
    }
  });
});
