import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { directoryResolver } from '../../packages/server/src/boot/tftp/directory.ts';
import { TftpServer } from '../../packages/server/src/boot/tftp/server.ts';
import { tempDir } from '../cli/cli-process.ts';
import { curlGet, type Fixtures, makeFixtures, packet, threadModes, waitFor } from '../tftp/support.ts';

// The flood of the security review: 1,200 read requests from 20 addresses in about 3 s, never acknowledged.
// Each address stays under its per-address limit (64) and its request rate; together they pass the server's
// total of 1,000. The bounds checked: a new client is served within 2 s during the flood, and every slot the
// flood took is free again within 12 s of its last request.
const floodAddresses = 20;
const requestsPerAddress = 60;
const floodSeconds = 3;

async function socketOn(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', () => {}); // silent: read and never answered
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
}

for (const mode of threadModes) {
  describe(`a silent flood does not block TFTP (${mode.label})`, () => {
    let fixtures: Fixtures;
    let server: TftpServer;
    let port: number;
    const errors: unknown[] = [];
    const sockets: dgram.Socket[] = [];

    before(async () => {
      fixtures = makeFixtures();
      // The defaults of muster serve: 1,000 transfers, 64 per address, 10 requests a second per address (burst 50).
      server = new TftpServer({
        host: '0.0.0.0',
        port: 0,
        resolve: directoryResolver(fixtures.root),
        workers: mode.workers,
        onError: (error) => errors.push(error),
      });
      port = (await server.start()).port;
    });
    after(async () => {
      for (const socket of sockets) socket.close();
      await server.stop();
      fixtures.cleanup();
    });

    test('a new client is served within 2 s while 1,200 unanswered requests hold the server, and the slots come back', async () => {
      const perRound = requestsPerAddress / (floodSeconds * 4);
      for (let round = 0; round < floodSeconds * 4; round++) {
        for (let a = 1; a <= floodAddresses; a++) {
          for (let i = 0; i < perRound; i++) {
            const socket = await socketOn(`127.0.9.${a}`);
            sockets.push(socket);
            socket.send(packet.rrq('big.bin', { blksize: '1468' }), port, '127.0.0.1');
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(sockets.length, floodAddresses * requestsPerAddress);
      assert.ok(server.activeTransfers >= 900, `the flood holds the server (${server.activeTransfers} transfers)`);

      const out = join(tempDir('muster-flood-'), 'fetched');
      const served = await curlGet('127.0.10.1', port, 'text.txt', out, ['--max-time', '2', '--interface', '127.0.10.1']);
      assert.equal(served.code, 0, `a new client within 2 s: ${served.output}`);
      assert.deepEqual(readFileSync(out), readFileSync(join(fixtures.root, 'text.txt')));

      assert.ok(await waitFor(() => server.activeTransfers === 0, 12_000), `${server.activeTransfers} transfers still held 12 s on`);
      assert.deepEqual(errors, [], 'transfers that were never acknowledged are no server errors');
    });
  });
}
