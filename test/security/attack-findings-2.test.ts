import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { cleanClaimsUnderWay, FailureLimiter } from '../../packages/server/src/platform/limits/limiter.ts';
import { renderTemplate } from '../../packages/server/src/platform/templates/render.ts';
import { assertProblem } from '../api/assertions.ts';
import { deviceKeys } from '../support/device-keys.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';

// An outsider's attacks on the CA policy, the render threads' fast path and the failure limits. Tests named
// "probe (held)" are attacks that held; every other test is a hole and fails until it is fixed.

const keys = deviceKeys('attack-findings-2');

/** A fleet whose OTP claims get `profile` through a claim rule matching facts.role; returns its slots' OTPs. */
async function fleetWithProfile(h: () => Harness, name: string, spec: unknown): Promise<string[]> {
  const applied = await h().request('PUT', `/api/v1/profiles/${name}`, { body: { spec } });
  assert.equal(applied.status, 200, applied.text);
  const rule = await h().request('PUT', `/api/v1/rules/${name}`, {
    body: { door: 'claim', action: 'discover', profile: name, facts: { role: name }, priority: 5 },
  });
  assert.equal(rule.status, 200, rule.text);
  assert.equal((await h().request('POST', '/api/v1/fleets', { body: { name } })).status, 201);
  const slots = await h().request('POST', `/api/v1/fleets/${name}/slots`, { body: { count: 2 } });
  return slots.body.slots.map((s: { otp: string }) => s.otp);
}

const claim = (h: () => Harness, fleet: string, otp: string, hwid: string) =>
  h().request('POST', '/api/v1/claims/otp', { token: null, body: { fleet, otp, hwid, csr: keys.csr(hwid), facts: { role: fleet } } });

/** The policy an admin who allows devices any address sets: every IPv4 and IPv6 address but muster's own. */
const anyAddress = { ip_ranges: ['0.0.0.0/0', '::/0'] };

eachDatabase('attack findings 2: the CA policy, the render fast path and the failure limits', (h) => {
  test('profile apply refuses the IPv4-mapped IPv6 form of muster’s own address (::ffff:7f00:1 is 127.0.0.1)', async () => {
    // public_url's host is always forbidden, but the check compares address families: ::ffff:7f00:1 (also written
    // ::FFFF:7F00:1) is IPv6 to the policy and passes under ::/0, while TLS clients that compare IPs the way Go's
    // net.IP.Equal does take it for 127.0.0.1, the address devices reach muster at.
    assert.equal(new URL(h().config.publicUrl).hostname, '127.0.0.1');
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: anyAddress })).status, 200);
    const own = await h().request('PUT', '/api/v1/profiles/own-ip', { body: { spec: { certificate: { ip_addresses: ['127.0.0.1'] } } } });
    assert.deepEqual(assertProblem(own, 'validation_failed'), ['/spec/certificate/ip_addresses/0']);
    for (const mapped of ['::ffff:7f00:1', '::FFFF:7F00:1', '0:0:0:0:0:ffff:7f00:0001']) {
      const applied = await h().request('PUT', '/api/v1/profiles/mapped-ip', {
        body: { spec: { certificate: { ip_addresses: [mapped] } } },
      });
      assert.deepEqual(assertProblem(applied, 'validation_failed'), ['/spec/certificate/ip_addresses/0'], mapped);
    }
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);
  });

  test('a claim is not issued a certificate for the IPv4-mapped form of muster’s own address rendered from a template', async () => {
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: anyAddress })).status, 200);
    const [otp] = await fleetWithProfile(h, 'mapped-claim', { certificate: { ip_addresses: ['{{ "::ffff:7f00:1" }}'] } });
    const answer = await claim(h, 'mapped-claim', otp, 'HW-MAPPED-1');
    assert.equal((await h().request('PUT', '/api/v1/ca/policy', { body: {} })).status, 200);
    const san = answer.body.certificate ? new X509Certificate(answer.body.certificate).subjectAltName : null;
    assert.notEqual(answer.status, 201, `issued with ${san}`);
  });

  test('the render fast path renders {{ labels.size }} as Liquid does (the number of labels), not as nothing', async () => {
    // plainOutput answers a lone {{ a.b }} on the main thread and renders a name the object lacks as nothing; Liquid
    // answers `size` of an object with its number of keys. The same template renders two ways by whether a
    // filter sends it to a thread.
    const context = { labels: { rack: 'r1', room: 'b2' } };
    const threaded = (await renderTemplate('t', '{{ labels.size | append: "" }}', context)).toString();
    const fast = (await renderTemplate('t', '{{ labels.size }}', context)).toString();
    assert.deepEqual({ threaded, fast }, { threaded: '2', fast: '2' });
  });
  test('probe (held): wrong claims from one IPv6 /64 under changing addresses and X-Forwarded-For are counted as one source', async () => {
    // Sequential wrong claims (no burst): a different address in the /64 and a made-up X-Forwarded-For each time.
    const statuses = [];
    for (let i = 1; i <= 12; i++) {
      const answer = await h().request('POST', '/api/v1/claims/otp', {
        token: null,
        remoteAddress: `2001:DB8:0:7::${i.toString(16)}`,
        headers: { 'x-forwarded-for': `198.51.100.${i}` },
        body: { fleet: 'nowhere', otp: `wrong-otp-${i}`, hwid: `HW-SPRAY-${i}` },
      });
      statuses.push(answer.status);
    }
    assert.deepEqual(statuses, [...Array(10).fill(403), 429, 429]);
  });

  test('probe (held): a claim whose file template outlives the render time limit fails whole, and the same claim succeeds later', async () => {
    const loop = '{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}{% endfor %}{% endfor %}{% endfor %}';
    const [otp] = await fleetWithProfile(h, 'slow', { files: [{ path: 'etc/slow.conf', template: loop }] });
    const failed = await claim(h, 'slow', otp, 'HW-SLOW-1');
    assertProblem(failed, 'render_timeout');
    assert.match(failed.body.detail, /did not finish rendering within/);
    const machines = await h().request('GET', '/api/v1/machines?fleet=slow');
    assert.deepEqual(machines.body.items, []);
    const fixed = await h().request('PUT', '/api/v1/profiles/slow', {
      body: { spec: { files: [{ path: 'etc/slow.conf', template: 'host={{ hostname }}\n' }] } },
    });
    assert.equal(fixed.status, 200, fixed.text);
    const again = await claim(h, 'slow', otp, 'HW-SLOW-1');
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(
      again.body.configuration.files.map((f: { path: string; content: string }) => [f.path, f.content]),
      [['etc/slow.conf', 'host=slow-1\n']],
    );
  });

  test('probe (held): a wildcard smuggled through a template is refused at the claim, and the refusal spends nothing', async () => {
    const [otp] = await fleetWithProfile(h, 'smuggle', { certificate: { dns_names: ['{{ "*" }}.example'] } });
    const refused = await claim(h, 'smuggle', otp, 'HW-SMUGGLE-1');
    assert.equal(refused.status >= 400 && refused.status < 500, true, refused.text);
    assert.match(refused.text, /wildcard names are not allowed by the CA policy/);
    // The slot, the hardware id and the OTP are as they were: the same claim succeeds once the profile is fixed.
    const fixed = await h().request('PUT', '/api/v1/profiles/smuggle', {
      body: { spec: { certificate: { dns_names: ['{{ hostname }}'] } } },
    });
    assert.equal(fixed.status, 200, fixed.text);
    const again = await claim(h, 'smuggle', otp, 'HW-SMUGGLE-1');
    assert.equal(again.status, 201, again.text);
    assert.equal(new X509Certificate(again.body.certificate).subjectAltName, 'DNS:smuggle-1');
  });
});

// A public_url written as a fully qualified name with its root dot (https://muster.fleet.example.:8443) is a URL
// every client accepts, and names the same host as muster.fleet.example.
eachDatabase(
  'attack findings 2: public_url with a trailing dot',
  (h) => {
    test('muster’s own host name stays forbidden when public_url spells it with the root dot', async () => {
      // The always-forbidden list keeps "muster.fleet.example." while names are compared with their dot removed, so
      // muster.fleet.example (or any name under it) is allowed to a device certificate.
      const applied = await h().request('PUT', '/api/v1/profiles/own-host', {
        body: { spec: { certificate: { dns_names: ['muster.fleet.example', 'api.muster.fleet.example'] } } },
      });
      assert.deepEqual(assertProblem(applied, 'validation_failed'), ['/spec/certificate/dns_names/0', '/spec/certificate/dns_names/1']);
    });
  },
  { env: { MUSTER_PUBLIC_URL: 'https://muster.fleet.example.:8443' } },
);

test('a clean address’s burst of 64 wrong claims is not renewed each minute: after it the address is held to 10 a minute', async () => {
  // docs/identity.md: 10 wrong claims a minute per address; docs/security.md: an address with no failure may have 64
  // claims under way, and from the first wrong one on it is held to its limit. But a burst's failures all age out of
  // the window together, so the address is clean again a minute later: a prober who sends 64 wrong claims at once
  // each minute gets 64 tries a minute, not 10. The steps are the ones
  // countedAttempt takes (standing, attempt, fail), at the times a prober would send them.
  const limiter = new FailureLimiter(10, 60_000);
  const key = '203.0.113.80';
  const tried: number[] = [];
  for (const minute of [0, 1, 2]) {
    const now = 1_000_000 + minute * 61_000;
    const [standing] = await limiter.standing([key], now);
    const places = [];
    for (let i = 0; i < cleanClaimsUnderWay && standing.retryAfter === 0; i++) {
      const place = limiter.attempt([key], [standing], cleanClaimsUnderWay, now);
      if (place) places.push(place);
    }
    for (const _ of places) await limiter.fail([key], now);
    for (const place of places) place();
    tried.push(places.length);
  }
  // The first burst is allowed as documented; each later minute may try at most the limit.
  assert.deepEqual(
    tried.map((n, minute) => (minute === 0 ? n : Math.min(n, 11))),
    [cleanClaimsUnderWay, Math.min(tried[1], 10), Math.min(tried[2], 10)],
    `tried ${tried.join(', ')} in three minutes`,
  );
});
