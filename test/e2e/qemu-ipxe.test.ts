import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { eachDatabase } from '../support/harness.ts';
import { qemuSkipReason, startVm, type Vm } from '../support/qemu.ts';

// Software emulation on a busy machine: generous bounds that only stop a hung test, never measure one.
const bootTimeoutMs = 180_000;

const skip = qemuSkipReason();
if (skip) process.stderr.write(`# ${skip}\n`);

describe('QEMU harness: a PC with no disk boots iPXE against a plain HTTP server', { skip }, () => {
  const requests: string[] = [];
  let server: Server;
  let vm: Vm | undefined;

  before(async () => {
    server = createServer((request, response) => {
      requests.push(request.url ?? '');
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      // iPXE of Debian 12 takes the first ':' of a relative URL for a scheme, so the MAC goes into an absolute one.
      const body =
        path === '/boot.ipxe'
          ? `#!ipxe\necho test: boot script\nchain http://${request.headers.host}/ipxe?mac=\${net0/mac}&uuid=\${uuid}&serial=\${serial}\n`
          : `#!ipxe\necho test: answered \${net0/mac}\nexit\n`;
      response.writeHead(200, { 'content-type': 'text/plain' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    await vm?.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('iPXE fetches the DHCP boot file, then chains with its MAC, SMBIOS UUID and serial', async () => {
    const { port } = server.address() as AddressInfo;
    vm = startVm({
      bootUrl: `http://127.0.0.1:${port}/boot.ipxe`,
      mac: '52:54:00:9a:00:01',
      uuid: '6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f',
      serial: 'QEMU-HARNESS-1',
    });
    await vm.waitForOutput(/test: answered 52:54:00:9a:00:01/, bootTimeoutMs);
    assert.deepEqual(requests, [
      '/boot.ipxe',
      '/ipxe?mac=52%3A54%3A00%3A9a%3A00%3A01&uuid=6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f&serial=QEMU-HARNESS-1',
    ]);
    assert.match(vm.output(), /iPXE/);
  });

  test('stop() ends QEMU: no process is left behind', async () => {
    const pid = vm?.pid as number;
    await vm?.stop();
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  });
});

// Two boots, one per database, cost a few seconds each; the front door's writes differ by dialect, so both run.
describe('a PC with no OS boots against muster', { skip }, () => {
  const pc = { mac: '52:54:00:9a:10:01', uuid: '0b7e4f1a-2c3d-4e5f-8a9b-1c2d3e4f5a6b', serial: 'QEMU-E2E-1' };

  eachDatabase('iPXE front door', (h) => {
    let machineId = '';

    test('it is discovered by MAC and SMBIOS UUID, gets the registration script, and its timeline shows both requests', async (t) => {
      const { port } = h().muster.app.server.address() as AddressInfo;
      const vm = startVm({ bootUrl: `http://127.0.0.1:${port}/boot.ipxe`, ...pc });
      t.after(() => vm.stop());
      // The server has committed the machine before answering with the registration script.
      await vm.waitForOutput(/muster: registration/, bootTimeoutMs);

      const machine = (await h().request('GET', `/api/v1/machines/mac:${pc.mac}`)).body;
      machineId = machine.id;
      assert.deepEqual(
        { state: machine.state, identifiers: sortedIdentifiers(machine.identifiers) },
        {
          state: 'discovered',
          identifiers: [
            { kind: 'mac', value: pc.mac },
            { kind: 'serial', value: pc.serial },
            { kind: 'uuid', value: pc.uuid },
          ],
        },
      );
      assert.equal((await h().request('GET', `/api/v1/machines?q=${pc.mac}`)).body.items[0]?.id, machine.id);

      const sessions = (await h().request('GET', `/api/v1/machines/${machine.id}/boot-sessions`)).body.items;
      assert.equal(sessions.length, 1);
      const session = (await h().request('GET', `/api/v1/boot-sessions/${sessions[0].id}`)).body;
      assert.deepEqual(
        { machine_id: session.machine_id, door: session.door, requests: session.requests, errors: session.errors },
        { machine_id: machine.id, door: 'ipxe', requests: 2, errors: 0 },
      );
      assert.deepEqual(
        session.timeline.map((r: { door: string; path: string; status: string; error: string | null }) => ({
          door: r.door,
          path: r.path.split('?')[0],
          status: r.status,
          error: r.error,
        })),
        [
          { door: 'ipxe', path: '/boot.ipxe', status: 'ok', error: null },
          { door: 'ipxe', path: '/ipxe', status: 'ok', error: null },
        ],
      );
      const query = new URLSearchParams(session.timeline[1].path.split('?')[1]);
      assert.deepEqual([query.get('mac'), query.get('uuid'), query.get('serial')], [pc.mac, pc.uuid, pc.serial]);
    });

    test('what iPXE tells of the hardware becomes its facts', async () => {
      const { hardware } = (await h().request('GET', `/api/v1/machines/${machineId}`)).body;
      const { product, ...others } = hardware.ipxe;
      assert.deepEqual(others, { manufacturer: 'QEMU', buildarch: 'i386', platform: 'pcbios' });
      assert.match(product, /^Standard PC \(i440FX/);
    });

    test('the product name keeps its "+"', async () => {
      const { hardware } = (await h().request('GET', `/api/v1/machines/${machineId}`)).body;
      assert.equal(hardware.ipxe.product, 'Standard PC (i440FX + PIIX, 1996)');
    });
  });
});

function sortedIdentifiers(identifiers: { kind: string; value: string }[]) {
  return [...identifiers].sort((a, b) => a.kind.localeCompare(b.kind) || a.value.localeCompare(b.value));
}
