import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertProblem } from '../api/assertions.ts';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';

// The CA policy (docs/identity.md): a profile once got a certificate that any TLS client trusting muster's CA took
// for localhost and *.example for ten years. An operator's profile may only narrow what an admin's policy allows,
// at apply and again at every issuance.

const keys = deviceKeys('ca-policy');
const attack = {
  extended_key_usages: ['serverAuth'],
  dns_names: ['localhost', '*.example'],
  ip_addresses: ['127.0.0.1'],
  validity: '3650d',
};

const defaults = (h: () => Harness) => ({
  extended_key_usages: ['clientAuth'],
  key_usages: ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'nonRepudiation'],
  dns_suffixes: [],
  forbidden_names: [],
  ip_ranges: [],
  allow_wildcards: false,
  max_validity: null,
  always_forbidden_names: ['localhost', new URL(h().config.publicUrl).hostname],
  max_validity_seconds: 90 * 86_400,
  updated_at: null,
  updated_by: null,
});

const policyEvents = async (h: () => Harness) => (await h().request('GET', '/api/v1/events?type=ca.policy_changed&limit=500')).body.items;

/** A fleet whose OTP claims get `profile` through a claim rule matching facts.role; returns one slot's OTP. */
async function fleetWithProfile(h: () => Harness, name: string, spec: unknown, pool?: string): Promise<string[]> {
  const applied = await h().request('PUT', `/api/v1/profiles/${name}`, { body: { spec } });
  assert.equal(applied.status, 200, applied.text);
  const rule = await h().request('PUT', `/api/v1/rules/${name}`, {
    body: { door: 'claim', action: 'discover', profile: name, facts: { role: name }, priority: 5 },
  });
  assert.equal(rule.status, 200, rule.text);
  assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name } })).status, 201);
  if (pool) assert.equal((await h().request('PUT', `/api/v1/fleets/${name}/ip-pool`, { body: { cidr: pool } })).status, 200);
  const slots = await h().request('POST', `/api/v1/fleets/${name}/slots`, { body: { count: 2 } });
  return slots.body.slots.map((s: { otp: string }) => s.otp);
}

const claim = (h: () => Harness, fleet: string, otp: string, hwid: string, facts: Record<string, unknown> = { role: fleet }) =>
  h().request('POST', '/api/v1/claims/otp', { token: null, body: { fleet, otp, hwid, csr: keys.csr(hwid), facts } });

eachDatabase('An admin-owned CA policy holds profiles and every issuance', (h) => {
  test('the policy in force is the defaults until an admin sets one; a viewer may read it', async () => {
    const viewer = await h().userToken('viewer');
    const read = await h().request('GET', '/api/v1/ca/policy', { token: viewer });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body, defaults(h));
  });

  test('the profile that got a TLS server certificate for localhost is refused at apply, with a pointer per field', async () => {
    const reply = await h().request('PUT', '/api/v1/profiles/evil', { body: { spec: { certificate: attack } } });
    assertProblem(reply, 'validation_failed');
    assert.deepEqual(reply.body.errors, [
      { path: '/spec/certificate/extended_key_usages/0', message: 'serverAuth is not allowed by the CA policy (allowed: clientAuth)' },
      { path: '/spec/certificate/dns_names/0', message: 'localhost is forbidden by the CA policy (localhost)' },
      { path: '/spec/certificate/dns_names/1', message: '*.example: wildcard names are not allowed by the CA policy' },
      { path: '/spec/certificate/ip_addresses/0', message: '127.0.0.1 is the address of muster itself (public_url)' },
      { path: '/spec/certificate/validity', message: '3650d is longer than the CA policy allows (90d)' },
    ]);
    assert.equal((await h().request('GET', '/api/v1/profiles/evil')).status, 404, 'no profile was made');
  });

  test('a literal name outside the suffixes, a forbidden one or the public_url host, and an IP outside the ranges are refused', async () => {
    const set = await h().request('PUT', '/api/v1/ca/policy', {
      body: { dns_suffixes: ['.fleet.example'], ip_ranges: ['10.0.0.0/8'], forbidden_names: ['vault.fleet.example'] },
    });
    assert.equal(set.status, 200, set.text);
    const publicHost = new URL(h().config.publicUrl).hostname;
    const reply = await h().request('PUT', '/api/v1/profiles/narrow', {
      body: {
        spec: {
          certificate: {
            dns_names: ['{{ hostname }}.fleet.example', 'db.other.example', 'x.vault.fleet.example', 'LOCALHOST', 'ok.fleet.example'],
            ip_addresses: ['10.1.2.3', '192.168.1.1', publicHost],
          },
        },
      },
    });
    assertProblem(reply, 'validation_failed');
    assert.deepEqual(reply.body.errors, [
      {
        path: '/spec/certificate/dns_names/1',
        message: 'db.other.example is not under a DNS suffix the CA policy allows (.fleet.example)',
      },
      { path: '/spec/certificate/dns_names/2', message: 'x.vault.fleet.example is forbidden by the CA policy (vault.fleet.example)' },
      { path: '/spec/certificate/dns_names/3', message: 'LOCALHOST is forbidden by the CA policy (localhost)' },
      {
        path: '/spec/certificate/ip_addresses/1',
        message: '192.168.1.1 is outside the IP ranges the CA policy allows (10.0.0.0/8)',
      },
      { path: '/spec/certificate/ip_addresses/2', message: `${publicHost} is the address of muster itself (public_url)` },
    ]);
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);
  });

  test('a profile applied under a loose policy fails its claim once the policy is tightened, and the slot stays unclaimed', async () => {
    const loose = await h().request('PUT', '/api/v1/ca/policy', {
      body: { extended_key_usages: ['clientAuth', 'serverAuth'], dns_suffixes: ['fleet.example'], max_validity: '30d' },
    });
    assert.equal(loose.status, 200, loose.text);
    const [otp] = await fleetWithProfile(h, 'loose', {
      hostname: 'loose-{{ seq }}',
      certificate: { dns_names: ['{{ hostname }}.fleet.example'], extended_key_usages: ['clientAuth', 'serverAuth'], validity: '30d' },
    });
    const tightened = await h().request('PUT', '/api/v1/ca/policy', { body: { dns_suffixes: ['other.example'], max_validity: '7d' } });
    assert.equal(tightened.status, 200, tightened.text);
    const refused = await claim(h, 'loose', otp, 'HW-LOOSE-1');
    assertProblem(refused, 'ca_policy_violation');
    assert.deepEqual(refused.body.errors, [
      { path: '/certificate/extended_key_usages/1', message: 'serverAuth is not allowed by the CA policy (allowed: clientAuth)' },
      {
        path: '/certificate/dns_names/0',
        message: 'loose-1.fleet.example is not under a DNS suffix the CA policy allows (.other.example)',
      },
      { path: '/certificate/validity', message: '30d is longer than the CA policy allows (7d)' },
    ]);
    const slots = (await h().request('GET', '/api/v1/fleets/loose/slots')).body;
    assert.deepEqual(
      slots.map((s: { state: string; hwid: string | null }) => [s.state, s.hwid]),
      [
        ['unclaimed', null],
        ['unclaimed', null],
      ],
    );
    assert.equal((await h().request('GET', '/api/v1/machines/hwid:HW-LOOSE-1')).status, 404, 'no machine was made');
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);
  });

  test('an enrollment token’s claim and an operator’s approval are refused alike once the policy is tightened, and nothing is spent', async () => {
    assert.equal(
      (await h().request('PUT', '/api/v1/ca/policy', { body: { extended_key_usages: ['clientAuth', 'serverAuth'] } })).status,
      200,
    );
    const spec = { certificate: { extended_key_usages: ['clientAuth', 'serverAuth'] } };
    assert.equal((await h().request('PUT', '/api/v1/profiles/token-servers', { body: { spec } })).status, 200);
    const auto = await h().request('POST', '/api/v1/enrollment-tokens', {
      body: { name: 'auto-servers', profile: 'token-servers', approval: 'auto' },
    });
    const manual = await h().request('POST', '/api/v1/enrollment-tokens', {
      body: { name: 'manual-servers', profile: 'token-servers', approval: 'manual' },
    });
    const tokenClaim = (token: string, hwid: string) =>
      h().request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid, csr: keys.csr(hwid) } });
    const pending = await tokenClaim(manual.body.token, 'HW-TOKEN-MANUAL');
    assert.equal(pending.body.status, 'pending', pending.text);
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);

    const refusal = [
      { path: '/certificate/extended_key_usages/1', message: 'serverAuth is not allowed by the CA policy (allowed: clientAuth)' },
    ];
    const claimed = await tokenClaim(auto.body.token, 'HW-TOKEN-AUTO');
    assertProblem(claimed, 'ca_policy_violation');
    assert.deepEqual(claimed.body.errors, refusal);
    const approval = await h().request('POST', `/api/v1/machines/${pending.body.machine_id}/approve`);
    assertProblem(approval, 'ca_policy_violation');
    assert.deepEqual(approval.body.errors, refusal);

    const tokens = (await h().request('GET', '/api/v1/enrollment-tokens')).body;
    const uses = Object.fromEntries(tokens.map((t: { name: string; uses: number }) => [t.name, t.uses]));
    assert.deepEqual([uses['auto-servers'], uses['manual-servers']], [0, 1], 'the refused claim spent no use');
    assert.equal((await h().request('GET', '/api/v1/machines/hwid:HW-TOKEN-AUTO')).status, 404);
    assert.equal((await h().request('GET', `/api/v1/machines/${pending.body.machine_id}`)).body.state, 'discovered', 'still pending');
    assert.equal((await h().request('GET', `/api/v1/machines/${pending.body.machine_id}/certificates`)).body.length, 0);
  });

  test('a template-rendered IP SAN is allowed when it is the machine’s own pool address, and refused otherwise', async () => {
    const [first, second] = await fleetWithProfile(
      h,
      'pooled',
      { certificate: { dns_names: ['{{ hostname }}'], ip_addresses: ['{{ facts.addr }}'] } },
      '10.20.0.0/24',
    );
    const own = await claim(h, 'pooled', first, 'HW-POOL-1', { role: 'pooled', addr: '10.20.0.1' });
    assert.equal(own.status, 201, own.text);
    assert.equal(own.body.ip_address, '10.20.0.1');
    writeFileSync(keys.file('pooled.pem'), own.body.certificate);
    assert.match(openssl('x509', '-in', keys.file('pooled.pem'), '-noout', '-ext', 'subjectAltName'), /IP Address:10\.20\.0\.1/);
    const other = await claim(h, 'pooled', second, 'HW-POOL-2', { role: 'pooled', addr: '10.20.0.1' });
    assertProblem(other, 'ca_policy_violation');
    assert.deepEqual(other.body.errors, [
      {
        path: '/certificate/ip_addresses/0',
        message: "10.20.0.1 is outside the IP ranges the CA policy allows (none but the machine's own pool address)",
      },
    ]);
  });

  test('under the default policy no issued certificate passes openssl verify -purpose sslserver', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'plain' } })).status, 201);
    const [slot] = (await h().request('POST', '/api/v1/fleets/plain/slots', { body: { count: 1 } })).body.slots;
    const claimed = await claim(h, 'plain', slot.otp, 'HW-PLAIN-1', {});
    assert.equal(claimed.status, 201, claimed.text);
    writeFileSync(keys.file('ca.pem'), (await h().request('GET', '/api/v1/ca', { token: null })).body.certificate);
    writeFileSync(keys.file('plain.pem'), claimed.body.certificate);
    const verify = (purpose: string) => {
      try {
        return openssl('verify', '-purpose', purpose, '-CAfile', keys.file('ca.pem'), keys.file('plain.pem'));
      } catch (error) {
        return String((error as { stderr?: string }).stderr ?? error);
      }
    };
    assert.match(verify('sslclient'), /: OK/);
    assert.match(verify('sslserver'), /unsuitable certificate purpose/);
  });

  test('only an admin sets the policy: operator, viewer, an operator API token and an enrollment token are refused', async () => {
    const before = (await h().request('GET', '/api/v1/ca/policy')).body;
    const operator = await h().userToken('operator');
    const viewer = await h().userToken('viewer');
    const apiToken = await h().request('POST', '/api/v1/tokens', { token: operator, body: { name: 'ci' } });
    assert.equal(apiToken.status, 201, apiToken.text);
    const enrollment = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'policy-image' } });
    const loosen = { extended_key_usages: ['clientAuth', 'serverAuth'], allow_wildcards: true, max_validity: '3650d' };
    for (const [token, code] of [
      [operator, 'forbidden'],
      [viewer, 'forbidden'],
      [apiToken.body.token, 'forbidden'],
      [enrollment.body.token, 'invalid_token'],
      [null, 'unauthenticated'],
    ] as const) {
      assertProblem(await h().request('PUT', '/api/v1/ca/policy', { token, body: loosen }), code);
    }
    assert.deepEqual((await h().request('GET', '/api/v1/ca/policy')).body, before);
  });

  test('bad policy input is refused with a pointer and changes nothing', async () => {
    const before = (await h().request('GET', '/api/v1/ca/policy')).body;
    const eventsBefore = (await policyEvents(h)).length;
    for (const [body, path, message] of [
      [{ ip_ranges: ['10.0.0.0/33'] }, '/ip_ranges/0', '10.0.0.0/33 is not an IPv4 or IPv6 range (10.0.0.0/8, fd00::/8)'],
      [{ ip_ranges: ['10.0.0.1/8'] }, '/ip_ranges/0', '10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?'],
      [{ ip_ranges: ['fd00::/8', '300.1.1.1/8'] }, '/ip_ranges/1', '300.1.1.1/8 is not an IPv4 or IPv6 range (10.0.0.0/8, fd00::/8)'],
      [{ max_validity: '30m' }, '/max_validity', 'at least 1h'],
    ] as const) {
      const reply = await h().request('PUT', '/api/v1/ca/policy', { body });
      assertProblem(reply, 'validation_failed');
      assert.deepEqual(reply.body.errors, [{ path, message }]);
    }
    for (const [body, path] of [
      [{ extended_key_usages: ['codeSigning'] }, '/extended_key_usages/0'],
      [{ max_validity: '90 days' }, '/max_validity'],
      [{ dns_suffixes: ['*.example'] }, '/dns_suffixes/0'],
      [{ allow_wildcards: 'yes' }, '/allow_wildcards'],
      [{ ip_ranges: 'everything' }, '/ip_ranges'],
      [{ extended_key_usages: [] }, '/extended_key_usages'],
    ] as const) {
      const paths = assertProblem(await h().request('PUT', '/api/v1/ca/policy', { body }), 'validation_failed');
      assert.ok(paths.includes(path), `${JSON.stringify(body)}: ${paths.join(', ')}`);
    }
    assert.deepEqual((await h().request('GET', '/api/v1/ca/policy')).body, before);
    assert.equal((await policyEvents(h)).length, eventsBefore, 'no event');
  });

  test('an admin’s change is an audit event naming the actor and each field that changed', async () => {
    const eventsBefore = (await policyEvents(h)).length;
    const set = await h().request('PUT', '/api/v1/ca/policy', { body: { dns_suffixes: ['.fleet.example'], max_validity: '30d' } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(
      { ...set.body, updated_at: null },
      {
        ...defaults(h),
        dns_suffixes: ['.fleet.example'],
        max_validity: '30d',
        max_validity_seconds: 30 * 86_400,
        updated_by: 'user:admin',
      },
    );
    assert.equal(
      (await h().request('PUT', '/api/v1/ca/policy', { body: { dns_suffixes: ['.fleet.example'], max_validity: '30d' } })).status,
      200,
    );
    const events = await policyEvents(h);
    assert.equal(events.length, eventsBefore + 1, 'setting the same policy again records nothing');
    const event = events.at(-1);
    assert.deepEqual(
      { actor: event.actor, data: event.data },
      {
        actor: 'user:admin',
        data: { changed: { dns_suffixes: { from: [], to: ['.fleet.example'] }, max_validity: { from: null, to: '30d' } } },
      },
    );
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);
  });
});
