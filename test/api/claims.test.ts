import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createMuster } from '../../packages/server/src/app.ts';
import { databaseKinds } from '../support/databases.ts';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase, type Harness, startHarness, testConfig } from '../support/harness.ts';
import { assertProblem, refusedWithoutChange } from './assertions.ts';

// Seed 001 in muster (docs/identity.md): slots allocated to a fleet with one-time passwords, claimed once by one
// hardware id, with a certificate from muster's CA, checked with the openssl CLI.

const keys = deviceKeys('claims');
/** A device's own key and CSR; the subject is the device's to choose, and muster ignores it. */
const deviceCsr = (name: string, keyArgs?: string[]) => keys.csr(name, keyArgs);

function writeFile(name: string, text: string): string {
  const path = keys.file(name);
  writeFileSync(path, text);
  return path;
}

async function allocate(h: () => Harness, fleet: string, count: number) {
  const res = await h().request('POST', `/api/v1/fleets/${fleet}/slots`, { body: { count } });
  assert.equal(res.status, 201, res.text);
  return res.body.slots as { id: string; hostname: string; tunnel_port: number; otp: string; fleet_seq: number }[];
}

const claim = (h: () => Harness, body: Record<string, unknown>, remoteAddress = '192.0.2.10') =>
  h().request('POST', '/api/v1/claims/otp', { token: null, body, remoteAddress });

eachDatabase('One-time-password claims: /api/v1/fleets/:id/slots and /api/v1/claims/otp', (h) => {
  test('allocation continues the fleet’s sequence, takes tunnel ports unique across fleets, and shows each password once', async () => {
    for (const name of ['north', 'south']) assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name } })).status, 201);
    const north = await allocate(h, 'north', 3);
    assert.deepEqual(
      north.map((s) => s.hostname),
      ['north-1', 'north-2', 'north-3'],
    );
    const south = await allocate(h, 'south', 2);
    const more = await allocate(h, 'north', 1);
    assert.equal(more[0].hostname, 'north-4');
    const ports = [...north, ...south, ...more].map((s) => s.tunnel_port);
    assert.equal(new Set(ports).size, ports.length, 'tunnel ports are unique across fleets');
    assert.ok(ports.every((p) => p >= 20000 && p <= 29999));
    for (const slot of [...north, ...south]) assert.match(slot.otp, /^[A-Za-z0-9_-]{20}$/);

    const listed = await h().request('GET', '/api/v1/fleets/north/slots');
    assert.equal(listed.status, 200);
    assert.equal(listed.body.length, 4);
    assert.ok(listed.body.every((s: Record<string, unknown>) => s.state === 'unclaimed' && !('otp' in s)));
    const events = await h().request('GET', '/api/v1/events?type=fleet.slots_allocated');
    const text = JSON.stringify(events.body);
    assert.ok(
      north.every((s) => !text.includes(s.otp)),
      'no password in an event',
    );
    assert.equal((await h().request('GET', '/api/v1/fleets/north')).body.next_seq, 5);
  });

  test('a device claims its slot once: 201 with its hostname, tunnel port and a certificate openssl verifies', async () => {
    const [slot] = await allocate(h, 'north', 1);
    const csr = deviceCsr('dev-a');
    const first = await claim(h, {
      fleet: 'north',
      otp: slot.otp,
      hwid: 'HW-A-0001',
      csr,
      ssh_public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB device-a',
      facts: { model: 'pi4' },
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.hostname, slot.hostname);
    assert.equal(first.body.tunnel_port, slot.tunnel_port);
    assert.equal(first.body.fleet, 'north');
    assert.equal(first.body.configuration.tunnel_port, slot.tunnel_port);

    const ca = await h().request('GET', '/api/v1/ca', { token: null });
    assert.equal(ca.status, 200);
    assert.deepEqual(first.body.ca_chain, [ca.body.certificate]);
    const caFile = writeFile('ca.pem', ca.body.certificate);
    const certFile = writeFile('dev-a.pem', first.body.certificate);
    assert.match(openssl('verify', '-CAfile', caFile, certFile), /OK/);
    const text = openssl('x509', '-in', certFile, '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage');
    assert.match(text, new RegExp(`subject=CN ?= ?${slot.hostname}\\n`), 'the subject is muster’s, not the CSR’s');
    assert.doesNotMatch(text, /admin|not-muster/);
    assert.match(text, new RegExp(`DNS:${slot.hostname}`));
    assert.match(text, /TLS Web Client Authentication/);
    assert.equal(
      openssl('x509', '-in', certFile, '-noout', '-pubkey'),
      openssl('pkey', '-in', keys.file('dev-a.key'), '-pubout'),
      'the certificate holds the device’s own public key',
    );
    const fingerprint = openssl('x509', '-in', caFile, '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
    assert.equal(ca.body.fingerprint_sha256, fingerprint);

    const machine = await h().request('GET', `/api/v1/machines/${first.body.machine_id}`);
    assert.equal(machine.body.state, 'enrolled');
    assert.equal(machine.body.hostname, slot.hostname);
    assert.equal(machine.body.fleet, 'north');
    assert.ok(machine.body.identifiers.some((i: { kind: string; value: string }) => i.kind === 'hwid' && i.value === 'HW-A-0001'));
    const slots = (await h().request('GET', '/api/v1/fleets/north/slots')).body;
    const bound = slots.find((s: { id: string }) => s.id === slot.id);
    assert.deepEqual(
      { state: bound.state, hwid: bound.hwid, machine_id: bound.machine_id, claimed_from: bound.claimed_from },
      { state: 'claimed', hwid: 'HW-A-0001', machine_id: first.body.machine_id, claimed_from: '192.0.2.10' },
    );
    const certs = await h().request('GET', `/api/v1/machines/${first.body.machine_id}/certificates`);
    assert.equal(certs.body.length, 1);
    assert.equal(certs.body[0].certificate, first.body.certificate);

    // The same device again, with proof of its key: the same answer, 200. Without proof: its status alone.
    // Another device: 409, and nothing changes.
    const again = await claim(h, { fleet: 'north', otp: slot.otp, hwid: 'HW-A-0001', csr, proof: keys.proof('dev-a', 'HW-A-0001') });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    const bare = await claim(h, { fleet: 'north', otp: slot.otp, hwid: 'HW-A-0001', csr });
    assert.equal(bare.status, 200);
    assert.deepEqual(Object.keys(bare.body).sort(), ['detail', 'proof_required', 'server_time', 'status']);
    assert.deepEqual({ status: bare.body.status, proof_required: bare.body.proof_required }, { status: 'approved', proof_required: true });
    assertProblem(await claim(h, { fleet: 'north', otp: slot.otp, hwid: 'HW-B-0002' }), 'conflict');
    const events = (await h().request('GET', `/api/v1/machines/${first.body.machine_id}/events`)).body.items.map(
      (e: { type: string }) => e.type,
    );
    assert.deepEqual(events, ['machine.claimed', 'certificate.issued']);
  });

  test('a wrong password or fleet gets one answer that tells nothing; only wrong claims count against a source', async () => {
    const [slot] = await allocate(h, 'south', 1);
    const wrongOtp = await claim(h, { fleet: 'south', otp: 'guess', hwid: 'HW-G-1' }, '198.51.100.7');
    const wrongFleet = await claim(h, { fleet: 'nowhere', otp: slot.otp, hwid: 'HW-G-1' }, '198.51.100.7');
    assertProblem(wrongOtp, 'invalid_claim');
    assertProblem(wrongFleet, 'invalid_claim');
    assert.equal(wrongOtp.status, 403);
    assert.equal(wrongOtp.body.detail, wrongFleet.body.detail);
    for (let i = 0; i < 8; i++) await claim(h, { fleet: 'south', otp: `guess-${i}`, hwid: 'HW-G-1' }, '198.51.100.7');
    const throttled = await claim(h, { fleet: 'south', otp: slot.otp, hwid: 'HW-G-1' }, '198.51.100.7');
    assertProblem(throttled, 'rate_limited');
    assert.ok(Number(throttled.headers['retry-after']) > 0);
    // Another source is not affected, and many valid claims from one source are never throttled.
    const valid = await allocate(h, 'south', 15);
    for (const [i, s] of valid.entries()) {
      assert.equal((await claim(h, { fleet: 'south', otp: s.otp, hwid: `HW-NAT-${i}` }, '203.0.113.1')).status, 201);
    }
    assert.equal((await claim(h, { fleet: 'south', otp: slot.otp, hwid: 'HW-G-2' }, '203.0.113.2')).status, 201);
  });

  test('bad CSRs and bad input are refused and change nothing', async () => {
    const [slot] = await allocate(h, 'south', 1);
    const good = deviceCsr('dev-bad');
    // The same request with one letter of its subject changed after signing: the signature no longer matches.
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.indexOf('admin')] = 'A'.charCodeAt(0);
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const weak = deviceCsr('dev-weak', ['-newkey', 'rsa:1024']);
    const cases: [Record<string, unknown>, string][] = [
      [{ csr: forged }, 'bad_request'],
      [{ csr: weak }, 'bad_request'],
      [{ csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n' }, 'bad_request'],
      [{ csr: `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20_000)}` }, 'validation_failed'],
      [{ ssh_public_key: 'ssh-ed25519 AAAA\nroot' }, 'validation_failed'],
      [{ hwid: '' }, 'validation_failed'],
      [{ hwid: 'Default string' }, 'invalid_identifier'],
      [{ extra: 1 }, 'validation_failed'],
    ];
    for (const [change, code] of cases) {
      const res = await claim(h, { fleet: 'south', otp: slot.otp, hwid: 'HW-BAD-1', ...change });
      assert.notEqual(res.status, 201, `${JSON.stringify(change).slice(0, 120)} was accepted`);
      assertProblem(res, code as never);
    }
    const after = (await h().request('GET', '/api/v1/fleets/south/slots')).body.find((s: { id: string }) => s.id === slot.id);
    assert.equal(after.state, 'unclaimed');
    assert.equal((await h().request('GET', '/api/v1/machines?q=HW-BAD-1')).body.items.length, 0);
    assertProblem(await h().request('POST', '/api/v1/fleets/south/slots', { body: { count: 0 } }), 'validation_failed');
    assertProblem(await h().request('POST', '/api/v1/fleets/none/slots', { body: { count: 1 } }), 'not_found');
    const viewer = await h().userToken('viewer', 'slot-viewer');
    assertProblem(await h().request('POST', '/api/v1/fleets/south/slots', { body: { count: 1 }, token: viewer }), 'forbidden');
  });

  test('1,000 devices race for 100 passwords: exactly 100 slots bound, none twice, every winner’s retry learns its status', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'race' } })).status, 201);
    const slots = await allocate(h, 'race', 100);
    const attempts = Array.from({ length: 1000 }, (_, i) => ({ fleet: 'race', otp: slots[i % 100].otp, hwid: `HW-RACE-${i}` }));
    const results = await Promise.all(attempts.map((body, i) => claim(h, body, `10.1.${i % 250}.${1 + (i % 200)}`)));
    const winners = results.filter((r) => r.status === 201);
    assert.equal(winners.length, 100);
    assert.ok(
      results.every((r) => r.status === 201 || (r.status === 409 && r.body.code === 'conflict')),
      'the rest are 409',
    );
    assert.equal(new Set(winners.map((r) => r.body.hostname)).size, 100);
    assert.equal(new Set(winners.map((r) => r.body.machine_id)).size, 100);
    const bound = (await h().request('GET', '/api/v1/fleets/race/slots')).body;
    assert.equal(bound.filter((s: { state: string }) => s.state === 'claimed').length, 100);
    assert.equal((await h().request('GET', '/api/v1/machines?fleet=race&total=true')).body.total, 100);
    for (const [i, r] of results.entries()) {
      if (r.status !== 201 || i % 10 !== 0) continue;
      // These devices claimed without a CSR: their identity was in the first answer only.
      const retry = await claim(h, attempts[i]);
      assert.equal(retry.status, 200);
      assert.deepEqual(
        { status: retry.body.status, proof_required: retry.body.proof_required },
        { status: 'approved', proof_required: false },
      );
      assert.equal(retry.body.machine_id, undefined);
    }
  });

  test('one device sending its claim ten times at once gets one machine, one 201 and the same identity nine times with proof', async () => {
    const [slot] = await allocate(h, 'race', 1);
    const csr = deviceCsr('dev-self');
    const body = { fleet: 'race', otp: slot.otp, hwid: 'HW-SELF-1', csr, proof: keys.proof('dev-self', 'HW-SELF-1') };
    const results = await Promise.all(Array.from({ length: 10 }, () => claim(h, body)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    assert.ok(results.every((r) => r.body.certificate === results[0].body.certificate && r.body.machine_id === results[0].body.machine_id));
    assert.equal((await h().request('GET', '/api/v1/machines?q=HW-SELF-1')).body.items.length, 1);
  });

  test('a fleet’s IP pool gives each claimed machine the lowest free address; a full pool fails the claim and changes nothing', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'pool' } })).status, 201);
    assertProblem(await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: '10.9.0.0/33' } }), 'bad_request');
    assertProblem(await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: 'fd00::/48' } }), 'bad_request');
    assertProblem(await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: '::ffff:10.9.0.0/120' } }), 'bad_request');
    assertProblem(await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: 'ten/8' } }), 'validation_failed');
    const set = await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: '10.9.0.7/30' } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual({ cidr: set.body.cidr, size: set.body.size }, { cidr: '10.9.0.4/30', size: 2 });
    const slots = await allocate(h, 'pool', 3);
    const a = await claim(h, { fleet: 'pool', otp: slots[0].otp, hwid: 'HW-POOL-1' });
    const b = await claim(h, { fleet: 'pool', otp: slots[1].otp, hwid: 'HW-POOL-2' });
    assert.deepEqual([a.body.ip_address, b.body.ip_address], ['10.9.0.5', '10.9.0.6']);
    assertProblem(await claim(h, { fleet: 'pool', otp: slots[2].otp, hwid: 'HW-POOL-3' }), 'conflict');
    assert.equal((await h().request('GET', '/api/v1/fleets/pool/slots')).body[2].state, 'unclaimed');
    assert.equal((await h().request('GET', '/api/v1/machines?q=HW-POOL-3')).body.items.length, 0);
    assertProblem(await h().request('PUT', '/api/v1/fleets/pool/ip-pool', { body: { cidr: '10.9.1.0/24' } }), 'conflict');

    assert.equal((await h().request('POST', `/api/v1/machines/${a.body.machine_id}/transition`, { body: { to: 'retired' } })).status, 200);
    const c = await claim(h, { fleet: 'pool', otp: slots[2].otp, hwid: 'HW-POOL-3' });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.ip_address, '10.9.0.5', 'the retired machine’s address is taken again');
    const pool = (await h().request('GET', '/api/v1/fleets/pool/ip-pool')).body;
    assert.deepEqual(pool.allocations, [
      { address: '10.9.0.5', machine_id: c.body.machine_id },
      { address: '10.9.0.6', machine_id: b.body.machine_id },
    ]);
    assertProblem(await h().request('GET', '/api/v1/fleets/north/ip-pool'), 'not_found');
  });

  test('an IPv6 pool gives canonical addresses from the lowest, takes a retired one again, and a full /127 fails the claim', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'six' } })).status, 201);
    for (const cidr of ['fd00::/0', 'fd00::/63', 'fd00::/129', '::ffff:10.9.0.0/120', '::ffff:a09:0/120', '1.2.3.4.5/24']) {
      const refused = await h().request('PUT', '/api/v1/fleets/six/ip-pool', { body: { cidr } });
      assertProblem(refused, 'bad_request');
      assert.match(refused.body.detail, /is not an IPv4 range from \/8 to \/32 .* or an IPv6 range from \/64 to \/128/, cidr);
    }
    for (const cidr of ['fd00::zz/64', 'fd00::', 'six/64']) {
      assertProblem(await h().request('PUT', '/api/v1/fleets/six/ip-pool', { body: { cidr } }), 'validation_failed');
    }
    assertProblem(await h().request('GET', '/api/v1/fleets/six/ip-pool'), 'not_found');
    const set = await h().request('PUT', '/api/v1/fleets/six/ip-pool', { body: { cidr: 'FD00:0020:0:0:0:0:0:0/64' } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.body, { fleet: 'six', cidr: 'fd00:20::/64', family: 6, size: 2 ** 64 - 1, allocated: 0, allocations: [] });
    const slots = await allocate(h, 'six', 3);
    const a = await claim(h, { fleet: 'six', otp: slots[0].otp, hwid: 'HW-SIX-1' });
    const b = await claim(h, { fleet: 'six', otp: slots[1].otp, hwid: 'HW-SIX-2' });
    assert.deepEqual([a.body.ip_address, b.body.ip_address], ['fd00:20::1', 'fd00:20::2']);
    assert.equal((await h().request('POST', `/api/v1/machines/${a.body.machine_id}/transition`, { body: { to: 'retired' } })).status, 200);
    const released = await h().request('GET', `/api/v1/machines/${a.body.machine_id}/events`);
    const release = released.body.items.find((e: { type: string }) => e.type === 'machine.ip_address_released');
    assert.deepEqual(release?.data, { addresses: ['fd00:20::1'] });
    const c = await claim(h, { fleet: 'six', otp: slots[2].otp, hwid: 'HW-SIX-3' });
    assert.equal(c.body.ip_address, 'fd00:20::1', 'the retired machine’s address is taken again');
    assert.deepEqual((await h().request('GET', '/api/v1/fleets/six/ip-pool')).body.allocations, [
      { address: 'fd00:20::1', machine_id: c.body.machine_id },
      { address: 'fd00:20::2', machine_id: b.body.machine_id },
    ]);
    assertProblem(await h().request('PUT', '/api/v1/fleets/six/ip-pool', { body: { cidr: 'fd00:21::/64' } }), 'conflict');
    const same = await h().request('PUT', '/api/v1/fleets/six/ip-pool', { body: { cidr: 'fd00:20:0:0::/120' } });
    assert.equal(same.status, 200, 'a narrower range that keeps every held address is taken');
    assert.equal(same.body.cidr, 'fd00:20::/120');

    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'tiny6' } })).status, 201);
    assert.equal((await h().request('PUT', '/api/v1/fleets/tiny6/ip-pool', { body: { cidr: 'fd00:99::/127' } })).status, 200);
    const tiny = await allocate(h, 'tiny6', 3);
    const t1 = await claim(h, { fleet: 'tiny6', otp: tiny[0].otp, hwid: 'HW-TINY-1' });
    const t2 = await claim(h, { fleet: 'tiny6', otp: tiny[1].otp, hwid: 'HW-TINY-2' });
    assert.deepEqual([t1.body.ip_address, t2.body.ip_address], ['fd00:99::', 'fd00:99::1'], 'a /127 has both addresses');
    const full = await refusedWithoutChange(h(), () => claim(h, { fleet: 'tiny6', otp: tiny[2].otp, hwid: 'HW-TINY-3' }));
    assertProblem(full, 'conflict');
    assert.match(full.body.detail, /The IP pool fd00:99::\/127 of this fleet is full/);
    assert.equal((await h().request('GET', '/api/v1/fleets/tiny6/slots')).body[2].state, 'unclaimed');
    assert.equal((await h().request('GET', '/api/v1/fleets/tiny6/ip-pool')).body.allocated, 2);
    assertProblem(await h().request('PUT', '/api/v1/fleets/tiny6/ip-pool', { body: { cidr: '10.0.0.0/24' } }), 'conflict');
  });

  test('a retired machine’s certificate is in the CRL that openssl reads, and its tunnel port is taken again', async () => {
    assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'retire' } })).status, 201);
    const [slot] = await allocate(h, 'retire', 1);
    const claimed = await claim(h, { fleet: 'retire', otp: slot.otp, hwid: 'HW-RET-1', csr: deviceCsr('dev-ret') });
    assert.equal(claimed.status, 201, claimed.text);
    const caFile = writeFile('ca-ret.pem', (await h().request('GET', '/api/v1/ca', { token: null })).body.certificate);
    const certFile = writeFile('dev-ret.pem', claimed.body.certificate);
    const crlBefore = writeFile('before.crl', (await h().request('GET', '/api/v1/ca/crl', { token: null })).text);
    assert.match(openssl('verify', '-crl_check', '-CRLfile', crlBefore, '-CAfile', caFile, certFile), /OK/);

    const retired = await h().request('POST', `/api/v1/machines/${claimed.body.machine_id}/transition`, {
      body: { to: 'retired', reason: 'broken' },
    });
    assert.equal(retired.status, 200, retired.text);
    const crl = await h().request('GET', '/api/v1/ca/crl', { token: null });
    assert.equal(crl.status, 200);
    assert.match(String(crl.headers['content-type']), /pem/);
    const crlFile = writeFile('after.crl', crl.text);
    assert.match(openssl('crl', '-in', crlFile, '-noout', '-text'), /Revoked Certificates/);
    assert.throws(() => openssl('verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', caFile, certFile), /certificate revoked/);
    const certs = (await h().request('GET', `/api/v1/machines/${claimed.body.machine_id}/certificates`)).body;
    assert.equal(certs[0].revoke_reason, 'machine retired');

    const released = (await h().request('GET', '/api/v1/fleets/retire/slots')).body[0];
    assert.deepEqual({ state: released.state, tunnel_port: released.tunnel_port }, { state: 'released', tunnel_port: null });
    // The retired device asking again is told what happened, with proof or without, and never gets the revoked certificate.
    for (const proof of [undefined, keys.proof('dev-ret', 'HW-RET-1')]) {
      const gone = await claim(h, { fleet: 'retire', otp: slot.otp, hwid: 'HW-RET-1', proof });
      assertProblem(gone, 'machine_retired');
      assert.equal(gone.status, 410);
      assert.match(gone.body.detail, /was retired at .*claim again/);
    }
    assertProblem(await claim(h, { fleet: 'retire', otp: slot.otp, hwid: 'HW-OTHER-1' }), 'conflict');
    const [next] = await allocate(h, 'retire', 1);
    assert.equal(next.tunnel_port, slot.tunnel_port, 'the freed port is the lowest free one, taken again');
  });

  test('an operator revokes a certificate by serial; the CRL lists it', async () => {
    const [slot] = await allocate(h, 'retire', 1);
    const claimed = await claim(h, { fleet: 'retire', otp: slot.otp, hwid: 'HW-REV-1', csr: deviceCsr('dev-rev') });
    const [cert] = (await h().request('GET', `/api/v1/machines/${claimed.body.machine_id}/certificates`)).body;
    const viewer = await h().userToken('viewer', 'cert-viewer');
    assertProblem(await h().request('POST', `/api/v1/certificates/${cert.serial}/revoke`, { token: viewer, body: {} }), 'forbidden');
    const revoked = await h().request('POST', `/api/v1/certificates/${cert.serial}/revoke`, { body: { reason: 'key lost' } });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.revoke_reason, 'key lost');
    const crlFile = writeFile('rev.crl', (await h().request('GET', '/api/v1/ca/crl', { token: null })).text);
    assert.match(openssl('crl', '-in', crlFile, '-noout', '-text').toLowerCase(), new RegExp(cert.serial.replace(/^0+/, '').slice(0, 12)));
    assertProblem(await h().request('POST', '/api/v1/certificates/abcdef/revoke', { body: {} }), 'not_found');
  });
});

// Replicas share PostgreSQL only (SQLite has one server), so this suite runs where PostgreSQL does: always in CI.
if (databaseKinds.includes('postgres')) {
  describe('One-time-password claims through two servers on one PostgreSQL', () => {
    let harness: Harness;
    const h = () => harness;
    before(async () => {
      harness = await startHarness('postgres');
    });
    after(async () => {
      await harness?.muster.close();
      await harness?.database.drop();
    });

    test('two servers on one database: 400 devices race for 40 passwords through both, and 40 are bound', async () => {
      const second = await createMuster(testConfig(h().database));
      try {
        assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'twin' } })).status, 201);
        const slots = await allocate(h, 'twin', 40);
        const results = await Promise.all(
          Array.from({ length: 400 }, async (_, i) => {
            const body = { fleet: 'twin', otp: slots[i % 40].otp, hwid: `HW-TWIN-${i}` };
            // Each device from its own address, as devices are.
            const remoteAddress = `10.2.${i % 250}.${1 + (i % 200)}`;
            if (i % 2 === 0) return claim(h, body, remoteAddress);
            const res = await second.app.inject({ method: 'POST', url: '/api/v1/claims/otp', payload: body, remoteAddress });
            return { status: res.statusCode, body: res.json() };
          }),
        );
        assert.equal(results.filter((r) => r.status === 201).length, 40);
        const odd = results.filter((r) => r.status !== 201 && r.status !== 409);
        assert.deepEqual(odd, []);
        const bound = (await h().request('GET', '/api/v1/fleets/twin/slots')).body;
        assert.equal(new Set(bound.map((s: { hwid: string }) => s.hwid)).size, 40);
        // Both made the same CA: one key, one certificate.
        const ca2 = await second.app.inject({ method: 'GET', url: '/api/v1/ca' });
        assert.equal(ca2.json().fingerprint_sha256, (await h().request('GET', '/api/v1/ca', { token: null })).body.fingerprint_sha256);
      } finally {
        await second.close();
      }
    });
  });
}
