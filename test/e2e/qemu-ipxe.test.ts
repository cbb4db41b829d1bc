import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
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
