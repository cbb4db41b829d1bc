import assert from 'node:assert/strict';
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pxeIdentity, runPxeStorm, simulatePxe } from '@muster/sim/pxe.ts';
import {
  type BootHttp,
  bootRoot,
  initrdBytes,
  kernelBytes,
  startBootHttp,
  startMusterTftp,
  startTftpdHpa,
  type TftpPeer,
} from './support.ts';

const provisioned = pxeIdentity(1);
const unwanted = pxeIdentity(2);
const shortened = pxeIdentity(0x20);

describe('simulated PXE machines against a boot server', () => {
  let http: BootHttp;

  before(async () => {
    http = await startBootHttp({
      provisioned: new Set([provisioned.mac]),
      missing: new Set([unwanted.mac]),
      shortKernel: new Set([shortened.mac]),
    });
  });

  after(() => http.close());

  test('an unknown machine chains /ipxe with its identity and boots the kernel it is given, Content-Length checked', async () => {
    const machine = pxeIdentity(0);
    const result = await simulatePxe({ ...machine, baseUrl: http.url });
    assert.deepEqual(result.outcome, {
      kind: 'booted',
      image: `${http.url}/images/vmlinuz`,
      cmdline: `initrd=initrd.img muster.mac=${machine.mac}`,
      initrds: [`${http.url}/images/initrd.img`],
    });
    assert.deepEqual(
      result.requests.map(({ url, status, bytes, error }) => ({ url: url.replace(/\?.*/, '?…'), status, bytes, error })),
      [
        { url: `${http.url}/boot.ipxe`, status: 200, bytes: result.requests[0].bytes, error: null },
        { url: `${http.url}/ipxe?…`, status: 200, bytes: result.requests[1].bytes, error: null },
        { url: `${http.url}/images/vmlinuz`, status: 200, bytes: kernelBytes, error: null },
        { url: `${http.url}/images/initrd.img`, status: 200, bytes: initrdBytes, error: null },
      ],
    );
    assert.equal(result.success, true);
    assert.equal(result.firstRequestAnswered, true);
    assert.equal(result.summary, `booted ${http.url}/images/vmlinuz`);
  });

  test('the MAC arrives percent-encoded, the other settings as iPXE expands them', async () => {
    const machine = pxeIdentity(0x10);
    await simulatePxe({ ...machine, baseUrl: http.url });
    const raw = http.rawQueries.find((query) => query.includes(machine.mac.replaceAll(':', '%3A')));
    assert.equal(
      raw,
      `mac=${machine.mac.replaceAll(':', '%3A')}&uuid=${machine.uuid}&serial=${machine.serial}&asset=${machine.asset}` +
        '&manufacturer=QEMU&product=Standard%20PC%20(i440FX%20+%20PIIX,%201996)&buildarch=x86_64&platform=pcbios',
    );
  });

  test('a provisioned machine is told to exit: it boots from its disk', async () => {
    const result = await simulatePxe({ ...provisioned, baseUrl: http.url });
    assert.deepEqual(
      { success: result.success, outcome: result.outcome, console: result.console },
      { success: true, outcome: { kind: 'exit', code: 0, reason: 'exit command' }, console: ['provisioned: boot from disk'] },
    );
  });

  test('an HTTP error on /ipxe fails the boot with the URL and status', async () => {
    const result = await simulatePxe({ ...unwanted, baseUrl: http.url });
    assert.equal(result.success, false);
    assert.match(result.summary, /^error: chain http:\/\/127\.0\.0\.1:\d+\/ipxe\?mac=52%3A54%3A00%3A00%3A00%3A03.*: HTTP 404$/);
  });

  test('a kernel shorter than its Content-Length fails the download and the boot', async () => {
    const result = await simulatePxe({ ...shortened, baseUrl: http.url });
    assert.equal(result.success, false);
    assert.match(result.summary, new RegExp(`^error: kernel ${http.url}/images/short: `));
    const kernel = result.requests.at(-1);
    assert.equal(kernel?.url, `${http.url}/images/short`);
    assert.ok(kernel?.error, 'the request says what went wrong');
    assert.ok((kernel?.bytes ?? 0) < 1000);
  });

  test('a storm of 30 unknown machines at once: every one boots the kernel it is given', async () => {
    const summary = await runPxeStorm({ baseUrl: http.url, count: 30, macStart: 0x525400000100 });
    assert.deepEqual(
      { count: summary.count, succeeded: summary.succeeded, failed: summary.failed, firstRequestAnswered: summary.firstRequestAnswered },
      { count: 30, succeeded: 30, failed: 0, firstRequestAnswered: 30 },
    );
    assert.deepEqual(summary.outcomes, { [`booted ${http.url}/images/vmlinuz`]: 30 });
    assert.equal(summary.requests, 30 * 4);
  });

  test('a storm that includes a provisioned and an unwanted machine counts each outcome', async () => {
    const summary = await runPxeStorm({ baseUrl: http.url, count: 5, arrivalSeconds: 0.5 });
    assert.deepEqual(summary.outcomes, {
      [`booted ${http.url}/images/vmlinuz`]: 3,
      exit: 1,
      [`error: chain ${http.url}/ipxe?mac=52%3A54%3A00%3A00%3A00%3A03&uuid=${unwanted.uuid}&serial=${unwanted.serial}&asset=${unwanted.asset}&manufacturer=QEMU&product=Standard%20PC%20(i440FX%20+%20PIIX,%201996)&buildarch=x86_64&platform=pcbios: HTTP 404`]: 1,
    });
    assert.deepEqual(
      summary.failures.map((failure) => failure.mac),
      [unwanted.mac],
    );
  });
});

for (const peerName of ['muster', 'tftpd-hpa'] as const) {
  describe(`PXE with --tftp: undionly.kpxe from ${peerName} first`, () => {
    const { root, cleanup } = bootRoot();
    let http: BootHttp;
    let peer: TftpPeer;
    const undionly = '/usr/lib/ipxe/ipxe.pxe';

    before(async () => {
      copyFileSync(undionly, join(root, 'undionly.kpxe'));
      http = await startBootHttp();
      peer = peerName === 'muster' ? await startMusterTftp(root) : await startTftpdHpa(root);
    });

    after(async () => {
      await peer.stop();
      await http.close();
      cleanup();
    });

    test('the PXE ROM probes the size, loads iPXE, then iPXE asks for boot.ipxe', async () => {
      const result = await simulatePxe({ ...pxeIdentity(0x30), baseUrl: http.url, tftp: { host: peer.host, port: peer.port } });
      const tftpUrl = `tftp://${peer.host}:${peer.port}/undionly.kpxe`;
      assert.deepEqual(
        result.requests.slice(0, 3).map(({ url, bytes, error }) => ({ url, bytes, error })),
        [
          { url: tftpUrl, bytes: 0, error: null },
          { url: tftpUrl, bytes: statSync(undionly).size, error: null },
          { url: `${http.url}/boot.ipxe`, bytes: result.requests[2].bytes, error: null },
        ],
      );
      assert.equal(result.success, true);
    });

    test('a missing undionly.kpxe fails the boot before any HTTP request', async () => {
      const result = await simulatePxe({
        ...pxeIdentity(0x31),
        baseUrl: http.url,
        tftp: { host: peer.host, port: peer.port, filename: 'nope.kpxe' },
      });
      assert.equal(result.success, false);
      assert.equal(result.requests.length, 1);
      assert.match(result.summary, /^error: tftp tftp:\/\/127\.0\.0\.1:\d+\/nope\.kpxe: ERROR 1 /);
    });
  });
}
