import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { ArtifactUrlSigner } from '../../packages/server/src/boot/core/signing.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';

const ipxe = (mac: string) => `/ipxe?mac=${encodeURIComponent(mac)}&manufacturer=Evil&product=Attacker`;

/** A machine taken along the lifecycle by an operator, from its first enrollment to `to`. */
async function machineIn(h: () => Harness, tag: string, mac: string, to: string[]): Promise<string> {
  const made = await h().request('POST', '/api/v1/enroll', {
    token: null,
    body: { service_tag: tag, mac_address: mac, hardware: { cpu: 'EPYC 7313', memory_gb: 128 } },
  });
  assert.equal(made.status, 201, made.text);
  const id = made.body.id;
  // A configuration makes an enrolled machine configured.
  if (to[0] === 'configured')
    assert.equal((await h().request('PATCH', `/api/v1/machines/${id}`, { body: { nixos_config: '{ }' } })).status, 200);
  for (const state of to[0] === 'configured' ? to.slice(1) : to) {
    const moved = await h().request('POST', `/api/v1/machines/${id}/transition`, { body: { to: state } });
    assert.equal(moved.status, 200, `${state}: ${moved.text}`);
  }
  return id;
}

const view = async (h: () => Harness, id: string) => {
  const m = (await h().request('GET', `/api/v1/machines/${id}`)).body;
  return { state: m.state, hardware: m.hardware, identifiers: m.identifiers, hostname: m.hostname, service_tag: m.service_tag };
};

describe('signed artifact URLs expire', () => {
  test('a URL works until its time is up, and a changed expiry breaks the signature', () => {
    let clock = Date.UTC(2026, 11, 3, 12, 0, 0);
    const signer = new ArtifactUrlSigner('k'.repeat(32), 3600, () => clock);
    const sha = 'a'.repeat(64);
    const url = new URL(`http://muster${signer.path('m_1', 'install', sha, 'vmlinuz')}`);
    const signed = (q: URLSearchParams) => ({
      machineId: q.get('m') as string,
      phase: q.get('p') as string,
      expires: Number(q.get('e')),
      signature: q.get('s') as string,
    });
    assert.equal(signer.verify(signed(url.searchParams), sha), 'ok');
    clock += 3600_000 + 1000;
    assert.equal(signer.verify(signed(url.searchParams), sha), 'expired');
    const extended = new URLSearchParams(url.search);
    extended.set('e', String(Number(extended.get('e')) + 86400));
    assert.equal(signer.verify(signed(extended), sha), 'forged');
    assert.equal(signer.verify(signed(url.searchParams), 'b'.repeat(64)), 'forged');
  });
});

eachDatabase('knowing a MAC is not enough to act as the machine', (h) => {
  test('an anonymous enrollment of a machine past enrolled changes nothing and is reported as an event', async () => {
    for (const [n, path] of [['configured'], ['configured', 'building', 'ready'], ['retired']].entries()) {
      const mac = `02:00:00:00:77:0${n}`;
      const id = await machineIn(h, `TRUST-${n}`, mac, path);
      const before = await view(h, id);
      const attack = await h().request('POST', '/api/v1/enroll', {
        token: null,
        body: { mac_address: mac, uuid: `11111111-1111-1111-1111-11111111111${n}`, asset_tag: 'ATTACKER', hardware: { cpu: 'evil' } },
      });
      assert.equal(attack.status, 200, attack.text);
      assert.deepEqual(await view(h, id), before, path.join(' → '));
      const events = (await h().request('GET', `/api/v1/machines/${id}/events`)).body.items;
      const reported = events.find((e: { type: string }) => e.type === 'machine.enroll_reported');
      assert.ok(reported, 'the attempt is an event');
      assert.deepEqual(reported.data.facts, { cpu: 'evil' });
      assert.equal((await h().request('GET', '/api/v1/machines/asset:ATTACKER')).status, 404, 'no identifier was added');
    }
  });

  test('an enrolled machine still takes its re-enrollment (the registration flow of seed 003)', async () => {
    const id = await machineIn(h, 'TRUST-REG', '02:00:00:00:78:01', []);
    const again = await h().request('POST', '/api/v1/enroll', {
      token: null,
      body: { service_tag: 'TRUST-REG', mac_address: '02:00:00:00:78:01', hardware: { cpu: 'EPYC 9654' } },
    });
    assert.equal(again.status, 200);
    assert.deepEqual((await view(h, id)).hardware, { cpu: 'EPYC 9654' });
  });

  test('/ipxe tells an anonymous caller neither the id nor the state, and changes no facts of a configured machine', async () => {
    const mac = '02:00:00:00:79:01';
    const id = await machineIn(h, 'TRUST-IPXE', mac, ['configured']);
    const before = await view(h, id);
    const answer = await h().request('GET', ipxe(mac), { token: null });
    assert.equal(answer.status, 200);
    assert.ok(!answer.text.includes(id) && !answer.text.includes('configured'), answer.text);
    assert.deepEqual(await view(h, id), before);
  });

  test('the only state change /ipxe makes is the one an operator enabled: ready → provisioning', async () => {
    const mac = '02:00:00:00:80:01';
    const id = await machineIn(h, 'TRUST-FLOW', mac, ['configured', 'building', 'ready']);
    await h().request('GET', ipxe(mac), { token: null });
    assert.equal((await view(h, id)).state, 'provisioning');
    assert.equal((await h().request('POST', `/api/v1/machines/${id}/transition`, { body: { to: 'provisioned' } })).status, 200);
    for (let i = 0; i < 3; i++)
      assert.match((await h().request('GET', ipxe(mac), { token: null })).text, /booting from local disk\nexit\n$/);
    assert.equal((await view(h, id)).state, 'provisioned');
  });

  test('an artifact URL stops working when the machine leaves the boot it was signed for (retired, or on to install)', async () => {
    const { artifact } = await h().muster.artifacts.addStream('test', Readable.from([Buffer.from('registration kernel')]), {
      name: 'kernel',
    });
    const named = await h().request('PUT', '/api/v1/artifact-names/registration%2Fkernel', { body: { sha256: artifact.sha256 } });
    assert.ok(named.status < 300, named.text);
    for (const [n, leave] of [['retired'], ['configured', 'building', 'ready']].entries()) {
      const mac = `02:00:00:00:81:0${n}`;
      const answer = await h().request('GET', ipxe(mac), { token: null });
      const url = new URL(/kernel (\S+)/.exec(answer.text)?.[1] as string);
      const fetch = () => h().request('GET', url.pathname + url.search, { token: null });
      assert.equal((await fetch()).status, 200);
      const id = (await h().request('GET', `/api/v1/machines/mac:${mac}`)).body.id;
      const move = async (to: string) =>
        assert.equal((await h().request('POST', `/api/v1/machines/${id}/transition`, { body: { to } })).status, 200, to);
      if (leave[0] === 'retired') await move('retired');
      else {
        await move('enrolled');
        assert.equal((await h().request('PATCH', `/api/v1/machines/${id}`, { body: { nixos_config: '{ }' } })).status, 200);
        for (const to of leave.slice(1)) await move(to);
      }
      const refused = await fetch();
      assert.equal(refused.status, 403, leave.join(' → '));
      assert.match(refused.body.detail, /earlier boot/);
    }
  });
});
