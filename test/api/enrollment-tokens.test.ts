import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';
import { assertProblem } from './assertions.ts';

// Enrollment tokens and approval (docs/identity.md): a token bound to a fleet and labels, limited in uses and time,
// revocable, shown once; claims with it enrolled at once or held for an operator.

const keys = deviceKeys('tokens');
const csr = (name: string) => keys.csr(name);

const claim = (h: () => Harness, body: Record<string, unknown>, remoteAddress = '192.0.2.40') =>
  h().request('POST', '/api/v1/claims/token', { token: null, body, remoteAddress });

eachDatabase('Enrollment tokens: /api/v1/enrollment-tokens and /api/v1/claims/token', (h) => {
  test('an automatic token enrolls a device into its fleet with its labels and a certificate; the secret is shown once', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'edge' } })).status, 201);
    const created = await h().request('POST', '/api/v1/enrollment-tokens', {
      body: { name: 'edge-image', fleet: 'edge', labels: { site: 'oslo' }, approval: 'auto', max_uses: 2, expires_in: '7d' },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.token, /^mse_[A-Za-z0-9_-]{32}$/);
    const listed = (await h().request('GET', '/api/v1/enrollment-tokens')).body;
    assert.ok(!JSON.stringify(listed).includes(created.body.token), 'the list never shows the secret');
    const events = await h().request('GET', '/api/v1/events?type=enrollment_token.created');
    assert.ok(!JSON.stringify(events.body).includes(created.body.token));

    const first = await claim(h, { token: created.body.token, hwid: 'HW-TOK-1', csr: csr('t1'), facts: { model: 'jetson' } });
    assert.equal(first.status, 201, first.text);
    assert.deepEqual(
      { status: first.body.status, hostname: first.body.hostname, fleet: first.body.fleet, labels: first.body.labels },
      { status: 'approved', hostname: 'edge-1', fleet: 'edge', labels: { site: 'oslo' } },
    );
    writeFileSync(keys.file('ca.pem'), first.body.ca_chain[0]);
    writeFileSync(keys.file('t1.pem'), first.body.certificate);
    assert.match(openssl('verify', '-CAfile', keys.file('ca.pem'), keys.file('t1.pem')), /OK/);
    const again = await claim(h, { token: created.body.token, hwid: 'HW-TOK-1', proof: keys.proof('t1', 'HW-TOK-1') });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    const bare = await claim(h, { token: created.body.token, hwid: 'HW-TOK-1' });
    assert.deepEqual(
      { status: bare.status, answer: bare.body.status, keys: Object.keys(bare.body).sort() },
      {
        status: 200,
        answer: 'approved',
        keys: ['detail', 'proof_required', 'server_time', 'status'],
      },
    );
    const machine = (await h().request('GET', `/api/v1/machines/${first.body.machine_id}`)).body;
    assert.equal(machine.state, 'enrolled');

    assert.equal((await claim(h, { token: created.body.token, hwid: 'HW-TOK-2' })).status, 201);
    const usedUp = await claim(h, { token: created.body.token, hwid: 'HW-TOK-3' });
    assertProblem(usedUp, 'invalid_claim');
    assert.match(usedUp.body.detail, /used up/);
    assert.equal(
      (await h().request('GET', '/api/v1/enrollment-tokens')).body.find((t: { name: string }) => t.name === 'edge-image').uses,
      2,
    );
  });

  test('a manual token holds the device pending until an operator approves or rejects it', async () => {
    const created = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'lab-image' } });
    assert.equal(created.body.approval, 'rules', 'the default: no rule approves it, so it waits');
    const token = created.body.token;
    const pending = await claim(h, { token, hwid: 'HW-PEND-1', csr: csr('p1') });
    assert.equal(pending.status, 201);
    assert.equal(pending.body.status, 'pending');
    assert.equal(pending.body.certificate, undefined);
    assert.equal((await h().request('GET', `/api/v1/machines/${pending.body.machine_id}`)).body.state, 'discovered');
    const waiting = await claim(h, { token, hwid: 'HW-PEND-1' });
    assert.equal(waiting.status, 202);
    assert.deepEqual(
      { status: waiting.body.status, proof_required: waiting.body.proof_required },
      { status: 'pending', proof_required: true },
    );

    const viewer = await h().userToken('viewer', 'tok-viewer');
    assertProblem(await h().request('POST', `/api/v1/machines/${pending.body.machine_id}/approve`, { token: viewer }), 'forbidden');
    const approved = await h().request('POST', `/api/v1/machines/${pending.body.machine_id}/approve`);
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.status, 'approved');
    assert.match(approved.body.certificate, /BEGIN CERTIFICATE/);
    assert.equal(approved.body.configuration.files, undefined, 'the operator’s answer holds none of the device’s files');
    const after = await claim(h, { token, hwid: 'HW-PEND-1', proof: keys.proof('p1', 'HW-PEND-1') });
    assert.equal(after.status, 200);
    assert.equal(after.body.certificate, approved.body.certificate);
    assertProblem(await h().request('POST', `/api/v1/machines/${pending.body.machine_id}/approve`), 'conflict');

    const other = await claim(h, { token, hwid: 'HW-PEND-2' });
    assert.equal(
      (await h().request('POST', `/api/v1/machines/${other.body.machine_id}/reject`, { body: { reason: 'unknown box' } })).status,
      204,
    );
    assertProblem(await claim(h, { token, hwid: 'HW-PEND-2' }), 'invalid_claim');
    assert.equal((await h().request('GET', `/api/v1/machines/${other.body.machine_id}`)).body.state, 'retired');
    const types = (await h().request('GET', `/api/v1/machines/${other.body.machine_id}/events`)).body.items.map(
      (e: { type: string }) => e.type,
    );
    assert.ok(types.includes('machine.rejected'));
  });

  test('a revoked, expired or unknown token gets a clear error and makes nothing; a hwid of another machine is 409', async () => {
    const revoked = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'old-image', approval: 'auto' } })).body;
    assert.equal((await h().request('POST', '/api/v1/enrollment-tokens/old-image/revoke')).status, 200);
    const r = await claim(h, { token: revoked.token, hwid: 'HW-REV-9' });
    assertProblem(r, 'invalid_claim');
    assert.match(r.body.detail, /revoked/);
    const expired = (
      await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'short', approval: 'auto', expires_in: '1s' } })
    ).body;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const e = await claim(h, { token: expired.token, hwid: 'HW-EXP-9' });
    assertProblem(e, 'invalid_claim');
    assert.match(e.body.detail, /expired/);
    assertProblem(await claim(h, { token: 'mse_nothing', hwid: 'HW-UNK-9' }), 'invalid_claim');
    assert.equal((await h().request('GET', '/api/v1/machines?q=HW-REV-9')).body.items.length, 0);
    const fresh = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'dup', approval: 'auto' } })).body;
    assertProblem(await claim(h, { token: fresh.token, hwid: 'HW-TOK-1' }), 'conflict');
    assertProblem(await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'dup' } }), 'already_exists');
    assertProblem(await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'x', fleet: 'nowhere' } }), 'not_found');
    assertProblem(await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'x', expires_in: 'soon' } }), 'validation_failed');
  });

  test('guessing tokens from one address is throttled after 10 wrong tries a minute; another address still claims', async () => {
    const real = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'guessed', approval: 'auto' } })).body.token;
    for (let i = 0; i < 10; i++)
      assertProblem(await claim(h, { token: `mse_guess${i}`, hwid: 'HW-GUESS' }, '198.51.100.77'), 'invalid_claim');
    const throttled = await claim(h, { token: real, hwid: 'HW-GUESS' }, '198.51.100.77');
    assertProblem(throttled, 'rate_limited');
    assert.ok(Number(throttled.headers['retry-after']) > 0);
    assert.equal((await h().request('GET', '/api/v1/machines?q=HW-GUESS')).body.items.length, 0, 'the throttled claim made nothing');
    assert.equal((await claim(h, { token: real, hwid: 'HW-GUESS' }, '198.51.100.78')).status, 201);
  });
});
