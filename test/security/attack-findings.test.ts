import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { canonicalSpec } from '../../packages/server/src/modules/profiles/service.ts';
import { insertVersion, nextVersion } from '../../packages/server/src/modules/profiles/store.ts';
import { assertProblem } from '../api/assertions.ts';
import { deviceKeys, openssl } from '../support/device-keys.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';

// An outsider's attacks on the identity doors: claim retries and their proof of possession, and the machine secret's
// way into readable fields. The first tests are holes (they fail until fixed); the rest are probes that held.

const keys = deviceKeys('attack-findings');

let rsa4kCsr: string | undefined;

const tokenClaim = (h: () => Harness, body: Record<string, unknown>, remoteAddress = '203.0.113.70') =>
  h().request('POST', '/api/v1/claims/token', { token: null, body, remoteAddress });

/** A profile whose file holds the machine's secret, and whose agent command is `command`. */
const specWith = (command: string) => ({
  secret: { bytes: 16, encoding: 'hex' },
  variables: { pw: 'pw-{{ secret }}' },
  files: [{ path: 'etc/device.conf', mode: '0600', template: 'PASSWORD={{ secret }}\n' }],
  agent: { commands: [command] },
});

const secretOf = (answer: { configuration: { files: { content: string }[] } }) =>
  /PASSWORD=([0-9a-f]{32})/.exec(answer.configuration.files[0].content)?.[1] as string;

eachDatabase(
  'attack findings: holes in the identity doors',
  (h) => {
    test('profile apply refuses an agent command that names the secret through a dynamic lookup ({{ [k] }})', async () => {
      // `{% assign k = "secret" %}{{ [k] }}` reads the top-level variable `secret` by a name known only when rendering;
      // the secret-flow analysis looks only at paths that start with `secret` or `vars`, so it is accepted.
      for (const command of ['echo {% assign k = "secret" %}{{ [k] }}', 'echo {% assign n = "vars" %}{{ [n].pw }}']) {
        const applied = await h().request('PUT', '/api/v1/profiles/dyn', { body: { spec: specWith(command) } });
        assert.deepEqual(assertProblem(applied, 'validation_failed'), ['/spec/agent/commands/0'], command);
      }
    });

    test('a retired machine’s claim retry without proof names no machine: the 410 carries no machine id', async () => {
      const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'ret-leak', approval: 'auto' } });
      const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RET-LEAK', csr: keys.csr('retleak') });
      assert.equal(first.status, 201, first.text);
      const retired = await h().request('POST', `/api/v1/machines/${first.body.machine_id}/transition`, { body: { to: 'retired' } });
      assert.equal(retired.status, 200, retired.text);
      // Anyone holding the image's token and the (public) hardware id, with no proof at all.
      const probe = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RET-LEAK' }, '198.51.100.7');
      assertProblem(probe, 'machine_retired');
      assert.doesNotMatch(probe.text, /m_[0-9A-Za-z]{10}/, 'an answer without proof tells nothing of the machine, not its id');
    });

    test('a claim sent twice at once with one token and hwid: one wins, the same key learns the status, another key a 409', async () => {
      const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'race', approval: 'auto' } });
      const token = made.body.token;
      const answers = [];
      for (const n of [1, 2, 3]) {
        const hwid = `HW-RACE-${n}`;
        const csr = keys.csr(`race-dev-${n}`);
        const [a, b] = await Promise.all([tokenClaim(h, { token, hwid, csr }), tokenClaim(h, { token, hwid, csr }, '198.51.100.9')]);
        const loser = a.status === 201 ? b : a;
        answers.push({ statuses: [a.status, b.status].sort(), loser: Object.keys(loser.body).sort() });
        // A copy with a key of its own (someone who claimed the hwid first, or came second) is told, not approved.
        const copy = await tokenClaim(h, { token, hwid, csr: keys.csr(`race-copy-${n}`) }, '198.51.100.9');
        assertProblem(copy, 'conflict');
        assert.match(copy.body.detail, /claimed with another key/);
        const won = await tokenClaim(h, { token, hwid, proof: keys.proof(`race-dev-${n}`, hwid) });
        assert.match(won.body.certificate, /BEGIN CERTIFICATE/);
      }
      const retried = { statuses: [200, 201], loser: ['detail', 'proof_required', 'server_time', 'status'] };
      assert.deepEqual(answers, [retried, retried, retried]);
    });

    test('sixty wrong logins sent at once from one address: no more than the limit of 4 are tried, the rest get 429', async () => {
      await h().userToken('viewer', 'victim');
      // The failure is counted after the password is checked, so every guess in flight passes the check first: the
      // limit bounds a patient guesser, and a concurrent one guesses as fast as it can open connections.
      const replies = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          h().request('POST', '/api/v1/login', {
            token: null,
            body: { username: 'victim', password: `guess-${i}` },
            remoteAddress: '198.51.100.11',
          }),
        ),
      );
      const statuses = replies.map((r) => r.status);
      const tried = statuses.filter((s) => s === 401).length;
      assert.ok(tried <= 4, `${tried} of 60 guesses were checked against the password, limit 4`);
      assert.deepEqual(new Set(statuses), new Set([401, 429]));
    });

    test('wrong one-time passwords sent at once: a clean address tries at most 64, one that has failed at most its limit', async () => {
      assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name: 'burst' } })).status, 201);
      const burst = async (address: string, count: number, from: number) => {
        const replies = await Promise.all(
          Array.from({ length: count }, (_, i) =>
            h().request('POST', '/api/v1/claims/otp', {
              token: null,
              body: { fleet: 'burst', otp: `guess-${from + i}`, hwid: `HW-BURST-${from + i}` },
              remoteAddress: address,
            }),
          ),
        );
        const statuses = replies.map((r) => r.status);
        assert.deepEqual(new Set(statuses.filter((s) => s !== 403 && s !== 429)), new Set());
        return statuses.filter((s) => s === 403).length;
      };
      // A site's NAT claims many devices at once, so a clean address may have 64 under way; its failures then hold it.
      const first = await burst('198.51.100.12', 100, 0);
      assert.ok(first <= 64, `${first} of 100 guesses were checked from a clean address, at most 64`);
      assert.equal(await burst('198.51.100.12', 60, 100), 0, 'past the limit, nothing is tried');
      assert.equal(await burst('198.51.100.13', 1, 200), 1);
      const held = await burst('198.51.100.13', 60, 300);
      assert.ok(held <= 3, `${held} of 60 guesses were checked from an address with one failure, limit 4`);
    });

    test('a device with the largest RSA key the CSR check takes (8192 bits) fits its proof in the schema', async () => {
      // An 8192-bit key takes openssl up to a minute to make on a loaded machine: its signature's size is checked
      // against the schema's bound here, and a 4096-bit device proves itself for real.
      assert.ok(Math.ceil(8192 / 8 / 3) * 4 <= 1400, 'an RSA 8192 signature, base64, fits proof.signature');
      const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'rsa4k', approval: 'auto' } });
      rsa4kCsr ??= keys.csr('rsa4k', ['-newkey', 'rsa:4096']);
      const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RSA-4K', csr: rsa4kCsr });
      assert.equal(first.status, 201, first.text);
      const proven = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RSA-4K', proof: keys.proof('rsa4k', 'HW-RSA-4K') });
      assert.equal(proven.status, 200, proven.text);
      assert.equal(proven.body.certificate, first.body.certificate);
    });
  },
  { env: { MUSTER_LOGIN_RATE: '4', MUSTER_CLAIM_FAILURE_RATE: '4' } },
);

eachDatabase(
  'attack findings: the token door creates machines without bound',
  (h) => {
    test('new hardware ids claimed with an image’s token stop at MUSTER_DISCOVERY_RATE (2): the rest get 429 and make nothing', async () => {
      // DESIGN.md: the claim endpoints are "bounded per source and overall (no request creates unbounded rows)", and
      // the token is in every image. A manual token gives the flooder nothing, but every claim is a machine, its
      // hardware id, a token claim and an event, and a line in the operators' approval queue.
      const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'flood', approval: 'manual' } });
      const statuses = [];
      for (let i = 0; i < 8; i++) {
        const body = { token: made.body.token, hwid: `HW-FLOOD-${i}` };
        statuses.push((await tokenClaim(h, body, '198.51.100.50')).status);
      }
      const machines = await h().request('GET', '/api/v1/machines?limit=100');
      assert.deepEqual(
        { statuses, machines: machines.body.items.length },
        { statuses: [201, 201, 429, 429, 429, 429, 429, 429], machines: 2 },
      );
    });
  },
  { env: { MUSTER_DISCOVERY_RATE: '2' } },
);

eachDatabase('attack probes: the identity doors held', (h) => {
  test('readable fields that reach the secret by a dynamic lookup still render without it, in the answer and in explain', async () => {
    // The analysis gap above leaks nothing: the public context holds no secret at all.
    const command = 'echo A{% assign k = "secret" %}{{ [k] }}B{% assign n = "vars" %}{{ [n].pw }}C';
    // Stored as a muster that took it would have stored it, so that the probe stands once apply refuses it.
    const at = new Date().toISOString();
    const db = h().muster.db.kysely;
    const { version } = await nextVersion(db, 'dyn2', at);
    const spec = canonicalSpec(specWith(command) as never);
    await insertVersion(db, { profile: 'dyn2', version, spec, digest: 'dyn2', actor: 'test', comment: '', created_at: at });
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'dyn2', approval: 'auto', profile: 'dyn2' } });
    const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-DYN-2', csr: keys.csr('dyn2') });
    assert.equal(first.status, 201, first.text);
    const secret = secretOf(first.body);
    assert.match(secret, /^[0-9a-f]{32}$/);
    assert.deepEqual(first.body.configuration.agent.commands, ['echo ABC']);
    const explained = await h().request('GET', `/api/v1/machines/${first.body.machine_id}/explain`);
    assert.ok(!explained.text.includes(secret), 'explain shows no secret');
    const events = await h().request('GET', '/api/v1/events?limit=500');
    assert.ok(!events.text.includes(secret), 'no event holds the secret');
  });

  test('proofs that are not the device’s own, fresh and for its hwid as sent, learn only the status', async () => {
    assert.equal((await h().request('PUT', '/api/v1/profiles/sec', { body: { spec: specWith('true') } })).status, 200);
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'proofs', approval: 'auto', profile: 'sec' } });
    const token = made.body.token;
    const first = await tokenClaim(h, { token, hwid: 'HW-PROOF-1', csr: keys.csr('p1') });
    assert.equal(first.status, 201, first.text);
    const secret = secretOf(first.body);
    keys.csr('attacker');
    const future = new Date(Date.now() + 10 * 60_000).toISOString();
    const proof = keys.proof('p1', 'HW-PROOF-1');
    const bodies = [
      // The device's fresh proof, replayed under another spelling of its hwid (the server trims it to the same one).
      { hwid: ' HW-PROOF-1', proof },
      { hwid: 'HW-PROOF-1 ', proof },
      // Signed ten minutes ahead, by the device's own key.
      { hwid: 'HW-PROOF-1', proof: keys.proof('p1', 'HW-PROOF-1', future) },
      // The device's signature under a time that parses to the same moment but is spelt otherwise.
      { hwid: 'HW-PROOF-1', proof: { ...proof, time: proof.time.replace('Z', '+00:00') } },
      // Raw r||s instead of DER, and a truncated DER.
      { hwid: 'HW-PROOF-1', proof: { ...proof, signature: Buffer.alloc(64, 1).toString('base64') } },
      { hwid: 'HW-PROOF-1', proof: { ...proof, signature: Buffer.from(proof.signature, 'base64').subarray(0, 20).toString('base64') } },
    ];
    for (const body of bodies) {
      const reply = await tokenClaim(h, { token, ...body }, '198.51.100.8');
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(Object.keys(reply.body).sort(), ['detail', 'proof_required', 'server_time', 'status'], JSON.stringify(body));
      assert.ok(!reply.text.includes(secret));
    }
    // The attacker's key with the attacker's CSR attached to the retry: told the hwid was claimed with another key.
    const foreign = await tokenClaim(h, {
      token,
      hwid: 'HW-PROOF-1',
      csr: keys.csr('attacker2'),
      proof: keys.proof('attacker2', 'HW-PROOF-1'),
    });
    assertProblem(foreign, 'conflict');
    assert.ok(!foreign.text.includes(secret));
    // The device's own proof, as signed, still works.
    const proven = await tokenClaim(h, { token, hwid: 'HW-PROOF-1', proof });
    assert.equal(secretOf(proven.body), secret);
  });

  test('an RSA 2048 device proves itself with an openssl PKCS#1 v1.5 signature; an RSA-PSS signature by the same key is refused', async () => {
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'rsa2k', approval: 'auto' } });
    const first = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RSA-2K', csr: keys.csr('rsa2k', ['-newkey', 'rsa:2048']) });
    assert.equal(first.status, 201, first.text);
    const proof = keys.proof('rsa2k', 'HW-RSA-2K');
    const proven = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RSA-2K', proof });
    assert.equal(proven.body.certificate, first.body.certificate);
    writeFileSync(keys.file('msg'), `muster-claim-v1\nHW-RSA-2K\n${proof.time}`);
    const pss = openssl(
      'dgst',
      '-sha256',
      '-sigopt',
      'rsa_padding_mode:pss',
      '-sign',
      keys.file('rsa2k.key'),
      '-out',
      keys.file('pss.sig'),
      keys.file('msg'),
    );
    assert.equal(pss, '');
    const signature = readFileSync(keys.file('pss.sig')).toString('base64');
    const refused = await tokenClaim(h, { token: made.body.token, hwid: 'HW-RSA-2K', proof: { time: proof.time, signature } });
    assert.deepEqual(Object.keys(refused.body).sort(), ['detail', 'proof_required', 'server_time', 'status']);
  });

  test('wrong proofs are not wrong claims: fifty of them from one address are all answered with the status, never 429', async () => {
    const made = await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: 'many', approval: 'auto' } });
    const token = made.body.token;
    assert.equal((await tokenClaim(h, { token, hwid: 'HW-MANY-1', csr: keys.csr('many') })).status, 201);
    const bad = { time: new Date().toISOString(), signature: Buffer.alloc(72, 7).toString('base64') };
    const statuses = new Set<number>();
    for (let i = 0; i < 50; i++) statuses.add((await tokenClaim(h, { token, hwid: 'HW-MANY-1', proof: bad }, '198.51.100.10')).status);
    assert.deepEqual([...statuses], [200]);
  });
});
