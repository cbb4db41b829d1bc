import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { eventually, treeFiles } from './support.ts';

/** What iPXE sends: the MAC URL-encoded, an SMBIOS UUID (here derived from the MAC), empty settings it lacks. */
const uuidOf = (mac: string) => `4c4c4544-0042-3510-8052-${mac.replace(/:/g, '')}`;
const query = (mac: string) =>
  `/ipxe?mac=${encodeURIComponent(mac)}&uuid=${uuidOf(mac)}&serial=&asset=&manufacturer=QEMU&product=Standard%20PC%20(i440FX%20+%20PIIX)&buildarch=x86_64&platform=pcbios`;

eachDatabase('iPXE front door', (h) => {
  const kernel = Buffer.alloc(4096, 1);
  before(async () => {
    const [file] = await treeFiles(h(), { bzImage: kernel });
    assert.equal(
      (await h().request('PUT', '/api/v1/artifact-names/registration%2Fkernel', { body: { sha256: file.sha256 } })).status < 300,
      true,
    );
  });

  test('/boot.ipxe chains to /ipxe with every identifier iPXE knows', async () => {
    const reply = await h().request('GET', '/boot.ipxe', { token: null });
    assert.equal(reply.status, 200);
    assert.match(reply.headers['content-type'] as string, /^text\/plain/);
    assert.match(reply.text, /^#!ipxe\n/);
    assert.match(reply.text, /chain http:\/\/localhost(:\d+)?\/ipxe\?mac=\$\{net0\/mac\}&uuid=\$\{uuid\}&serial=\$\{serial:uristring\}/);
  });

  test('an unknown machine is discovered with its MAC and UUID and gets the registration answer', async () => {
    await h().request('GET', '/boot.ipxe', { token: null });
    const reply = await h().request('GET', query('52:54:00:12:34:56'), { token: null });
    assert.equal(reply.status, 200, reply.text);
    const machine = (await h().request('GET', '/api/v1/machines/mac:52:54:00:12:34:56')).body;
    assert.equal(machine.state, 'discovered');
    assert.deepEqual(machine.identifiers, [
      { kind: 'mac', value: '52:54:00:12:34:56' },
      { kind: 'uuid', value: uuidOf('52:54:00:12:34:56') },
    ]);
    assert.deepEqual(machine.hardware, {
      ipxe: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX)', buildarch: 'x86_64', platform: 'pcbios' },
    });
    assert.match(reply.text, /^echo muster: registration$/m);
    assert.ok(!reply.text.includes('discovered'), 'an anonymous answer does not tell the state');
    const kernelUrl = /kernel (\S+)/.exec(reply.text)?.[1] as string;
    assert.match(kernelUrl, new RegExp(`/boot/artifacts/[0-9a-f]{64}/kernel\\?m=${machine.id}&p=registration&e=\\d+&s=`));
    const fetched = await h().request('GET', new URL(kernelUrl).pathname + new URL(kernelUrl).search, { token: null });
    assert.equal(fetched.status, 200);
    assert.equal(fetched.text.length, kernel.length);
    // The fetch is filed once its response has gone out.
    const detail = await eventually(async () => {
      const sessions = (await h().request('GET', `/api/v1/machines/${machine.id}/boot-sessions`)).body.items;
      const session = (await h().request('GET', `/api/v1/boot-sessions/${sessions[0].id}`)).body;
      return session.timeline.at(-1).door === 'http' ? session : null;
    }, 'the artifact fetch in the timeline');
    assert.deepEqual(
      // The earlier test's /boot.ipxe came from the same address within the minute, so it is filed here too.
      detail.timeline.slice(-3).map((r: { door: string; path: string; status: string }) => [r.door, r.path.split('?')[0], r.status]),
      [
        ['ipxe', '/boot.ipxe', 'ok'],
        ['ipxe', '/ipxe', 'ok'],
        ['http', new URL(kernelUrl).pathname, 'ok'],
      ],
    );
  });

  test('a signed artifact URL works only for its machine and artifact', async () => {
    const reply = await h().request('GET', query('52:54:00:00:00:01'), { token: null });
    const url = new URL(/kernel (\S+)/.exec(reply.text)?.[1] as string);
    const other = (await h().request('GET', query('52:54:00:00:00:02'), { token: null })).text;
    const otherMachine = new URL(/kernel (\S+)/.exec(other)?.[1] as string).searchParams.get('m');
    const signed = (changes: Record<string, string>) => {
      const query = new URLSearchParams(url.search);
      for (const [key, value] of Object.entries(changes)) query.set(key, value);
      return `${url.pathname}?${query}`;
    };
    const forgeries: Record<string, string>[] = [
      { m: otherMachine as string },
      { s: 'AAAA' },
      { p: 'install' },
      { e: String(Number(url.searchParams.get('e')) + 3600) },
    ];
    for (const forged of forgeries) {
      assert.equal((await h().request('GET', signed(forged), { token: null })).status, 403, JSON.stringify(forged));
    }
    assert.equal((await h().request('GET', `${url.pathname}`, { token: null })).status, 400);
    const ranged = await h().request('GET', url.pathname + url.search, { token: null, headers: { range: 'bytes=0-9' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.text.length, 10);
  });

  test('the answer follows the state: wait while building, the ready script once, local disk when provisioned', async () => {
    const mac = '52:54:00:00:00:10';
    await h().request('GET', query(mac), { token: null });
    const ref = `mac:${mac}`;
    await h().request('PUT', `/api/v1/machines/${ref}`, { body: { nixos_config: '{ }' } });
    for (const to of ['enrolled', 'configured'])
      assert.equal((await h().request('POST', `/api/v1/machines/${ref}/transition`, { body: { to } })).status, 200);
    assert.match(
      (await h().request('GET', query(mac), { token: null })).text,
      /being prepared; asking again in 30 s\nsleep 30\nchain http/,
    );
    const set = await h().request('PUT', '/api/v1/boot/scripts/ready', {
      body: { body: '#!ipxe\necho install {{ machine.id }} as {{ machine.hostname }}\nexit\n' },
    });
    assert.equal(set.status, 200, set.text);
    for (const to of ['building', 'ready'])
      assert.equal((await h().request('POST', `/api/v1/machines/${ref}/transition`, { body: { to } })).status, 200);
    const id = (await h().request('GET', `/api/v1/machines/${ref}`)).body.id;
    assert.equal((await h().request('GET', query(mac), { token: null })).text, `#!ipxe\necho install ${id} as \nexit\n`);
    assert.equal((await h().request('GET', `/api/v1/machines/${ref}`)).body.state, 'provisioning');
    assert.equal((await h().request('POST', `/api/v1/machines/${ref}/transition`, { body: { to: 'provisioned' } })).status, 200);
    assert.match((await h().request('GET', query(mac), { token: null })).text, /booting from local disk\nexit\n$/);
    assert.equal((await h().request('DELETE', '/api/v1/boot/scripts/ready')).body.builtin, true);
  });

  test('seed 003’s /nixos/machines/<tag>.ipxe answers by service tag', async () => {
    const reply = await h().request('GET', '/nixos/machines/SVC1234.ipxe', { token: null });
    assert.equal(reply.status, 200);
    assert.match(reply.text, /registration/);
    const machine = (await h().request('GET', '/api/v1/machines/serial:SVC1234')).body;
    assert.equal(machine.state, 'discovered');
  });

  test('a rule can refuse or ignore machines at the iPXE door', async () => {
    await h().request('PUT', '/api/v1/rules/no-vendor', { body: { door: 'ipxe', mac_prefix: 'DE-AD-BE', action: 'refuse' } });
    await h().request('PUT', '/api/v1/rules/quiet', { body: { door: 'ipxe', mac_prefix: 'de:ad:bf', action: 'ignore' } });
    assert.equal((await h().request('GET', query('de:ad:be:00:00:01'), { token: null })).status, 403);
    assert.equal((await h().request('GET', query('de:ad:bf:00:00:01'), { token: null })).status, 404);
    assert.equal((await h().request('GET', '/api/v1/machines/mac:de:ad:be:00:00:01')).status, 404);
    assert.equal((await h().request('GET', '/api/v1/machines/mac:de:ad:bf:00:00:01')).status, 404);
    const rules = (await h().request('GET', '/api/v1/rules')).body.items.map((r: { name: string }) => r.name);
    assert.deepEqual(rules, ['no-vendor', 'quiet']);
  });

  test('/ipxe keeps only the documented settings: 200 junk keys and a 4 KiB value are neither stored nor echoed', async () => {
    const mac = '52:54:00:00:0a:0b';
    const junk = Array.from({ length: 200 }, (_, i) => `junk${i}=${i}`).join('&');
    const url = `${query(mac)}&${junk}&note=${'x'.repeat(4096)}`;
    const first = await h().request('GET', url, { token: null });
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /^echo muster: registration$/m);
    const machine = (await h().request('GET', `/api/v1/machines/mac:${mac}`)).body;
    const kept = `/ipxe?mac=${encodeURIComponent(mac)}&uuid=${uuidOf(mac)}&serial=&asset=&manufacturer=QEMU&product=${encodeURIComponent('Standard PC (i440FX + PIIX)')}&buildarch=x86_64&platform=pcbios`;
    await h().request('PUT', `/api/v1/machines/${machine.id}`, { body: { nixos_config: '{ }' } });
    for (const to of ['enrolled', 'configured'])
      assert.equal((await h().request('POST', `/api/v1/machines/${machine.id}/transition`, { body: { to } })).status, 200);
    // Once configured, the answer is a wait loop that asks again with the same query: the kept one.
    const chain = new URL(/^chain (\S+)$/m.exec((await h().request('GET', url, { token: null })).text)?.[1] as string);
    assert.equal(chain.pathname + chain.search, kept);

    const sessions = (await h().request('GET', `/api/v1/machines/${machine.id}/boot-sessions`)).body.items;
    const timeline = (await h().request('GET', `/api/v1/boot-sessions/${sessions[0].id}`)).body.timeline;
    assert.deepEqual(
      timeline.filter((r: { door: string }) => r.door === 'ipxe').map((r: { path: string }) => r.path),
      [kept],
      'one row (the same path and status again adds to its count), of the documented settings only',
    );
    assert.deepEqual((await h().request('GET', `/api/v1/machines/${machine.id}`)).body.hardware, {
      ipxe: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX)', buildarch: 'x86_64', platform: 'pcbios' },
    });
  });

  test('bad input: no usable identifier, overlong values, bad scripts', async () => {
    const none = await h().request('GET', '/ipxe?mac=&uuid=00000000-0000-0000-0000-000000000000&serial=To%20Be%20Filled%20By%20O.E.M.', {
      token: null,
    });
    assert.equal(none.status, 404);
    assert.match(none.text, /no usable identifier/);
    assert.equal((await h().request('GET', `/ipxe?mac=${'a'.repeat(300)}`, { token: null })).status, 400);
    assert.equal((await h().request('GET', '/ipxe?mac=not-a-mac', { token: null })).status, 404);
    assert.equal((await h().request('PUT', '/api/v1/boot/scripts/ready', { body: { body: 'echo no shebang' } })).status, 400);
    assert.equal((await h().request('PUT', '/api/v1/boot/scripts/ready', { body: { body: '#!ipxe\n{% if %}' } })).status, 400);
    assert.equal((await h().request('PUT', '/api/v1/boot/scripts/other', { body: { body: '#!ipxe\n' } })).status, 400);
    assert.equal((await h().request('GET', '/api/v1/boot/scripts/ready')).body.builtin, true);
  });
});
