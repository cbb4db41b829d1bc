import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bufferSource } from '../../packages/server/src/boot/tftp/directory.ts';
import { TftpServer } from '../../packages/server/src/boot/tftp/server.ts';
import type { TftpSource } from '../../packages/server/src/boot/tftp/types.ts';
import { missingToolMessage } from '../tools/list.ts';
import {
  eachThreadMode,
  fixtureFiles,
  packet,
  pseudoRandomBytes,
  RawClient,
  rawGet,
  show,
  startTftp,
  threadModes,
  waitFor,
  withTimeout,
} from './support.ts';

/** tftp-hpa's interactive client runs every command of a session from one socket, so from one client port. */
function tftpHpaSession(port: number, commands: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('tftp', ['-4', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${missingToolMessage('tftp', 'cannot run')} (${error.message})` });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.on('error', () => {}); // EPIPE when tftp could not start; the 'error' above reports it
    child.stdin.end(`${['binary', ...commands, 'quit'].join('\n')}\n`);
  });
}

/** A UDP socket on another loopback address, for a second client machine. */
async function socketOn(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
}

function firstReply(socket: dgram.Socket, ms: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    socket.once('message', (message) => {
      clearTimeout(timer);
      resolve(message);
    });
  });
}

eachThreadMode(() => {
  describe('successive requests from one client port', () => {
    test('tftp-hpa fetches two files and then the first again in one session, all from one port', async () => {
      const t = await startTftp();
      const out = mkdtempSync(join(tmpdir(), 'muster-tftp-session-'));
      try {
        const session = await tftpHpaSession(t.port, [
          `get exact1024.bin ${join(out, 'a')}`,
          `get big.bin ${join(out, 'b')}`,
          `get exact1024.bin ${join(out, 'c')}`,
        ]);
        assert.equal(session.code, 0, session.output);
        assert.deepEqual(readFileSync(join(out, 'a')), fixtureFiles['exact1024.bin'], session.output);
        assert.deepEqual(readFileSync(join(out, 'b')), fixtureFiles['big.bin'], session.output);
        assert.deepEqual(readFileSync(join(out, 'c')), fixtureFiles['exact1024.bin'], session.output);
      } finally {
        rmSync(out, { recursive: true, force: true });
        await t.stop();
      }
    });

    test('the same request again at once after the last ACK is a new transfer, not a retransmission', async () => {
      const t = await startTftp();
      const c = await RawClient.open(t);
      try {
        for (let i = 0; i < 5; i++) {
          const r = await rawGet(c, 'exact512.bin', [], { deadlineMs: 5000 });
          assert.deepEqual(r.content, fixtureFiles['exact512.bin'], `fetch ${i + 1}`);
        }
      } finally {
        c.close();
        await t.stop();
      }
    });

    test('a different file asked for in the middle of a transfer (a Pi 3 moving on) is served, and the first transfer stops', async () => {
      const t = await startTftp({ timeoutMs: 150, retries: 2 });
      const c = await RawClient.open(t);
      try {
        await c.send(packet.rrq('big.bin'));
        const first = await c.expect();
        assert.equal(show(first.packet), 'DATA 1 (512 bytes)');
        const r = await rawGet(c, 'exact1024.bin');
        assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
        const late = (await c.collect(400)).filter((x) => x.port === first.port);
        assert.deepEqual(
          late.map((x) => show(x.packet)),
          [],
          'the first transfer kept sending',
        );
      } finally {
        c.close();
        await t.stop();
      }
    });
  });

  describe('sources', () => {
    test('bufferSource (a rendered template) is served, windowed and in netascii too', async () => {
      const rendered = pseudoRandomBytes(200_000, 7);
      const text = Buffer.from('console=serial0\nroot=/dev/nfs\n');
      const t = await startTftp({ resolve: async (request) => bufferSource(request.path === 'cmdline.txt' ? text : rendered) });
      const c = await RawClient.open(t);
      try {
        assert.deepEqual((await rawGet(c, 'initrd.img', { blksize: '1468', windowsize: '8' })).content, rendered);
        const r = await rawGet(c, 'cmdline.txt', [], { mode: 'netascii' });
        assert.deepEqual(r.content, Buffer.from('console=serial0\r\nroot=/dev/nfs\r\n'));
      } finally {
        c.close();
        await t.stop();
      }
    });

    test('a source with no transferable form is served from the main thread', async () => {
      const content = pseudoRandomBytes(100_000, 9);
      let closed = 0;
      const source: TftpSource = {
        size: content.length,
        read: async (offset, length) => content.subarray(offset, offset + length),
        close: async () => {
          closed++;
        },
      };
      const t = await startTftp({ resolve: async () => source });
      const c = await RawClient.open(t);
      try {
        assert.deepEqual((await rawGet(c, 'anything', { blksize: '1024', windowsize: '4' })).content, content);
        assert.ok(await waitFor(() => closed === 1, 1000), `closed ${closed} times`);
      } finally {
        c.close();
        await t.stop();
      }
    });
  });
});

describe('request rate per client address', () => {
  test('past its burst a client is not answered, other addresses are, and a token later it is again', async () => {
    const t = await startTftp({ requestRate: { burst: 3, perSecond: 4 } });
    const sockets = await Promise.all(Array.from({ length: 5 }, () => socketOn('127.0.0.1')));
    const other = await socketOn('127.0.0.2');
    try {
      const replies = sockets.map((s) => firstReply(s, 500));
      for (const s of sockets) s.send(packet.rrq('missing.bin'), t.port, '127.0.0.1');
      const answered = (await Promise.all(replies)).filter((r) => r !== null);
      assert.equal(answered.length, 3, 'the burst is 3');
      const fromOther = firstReply(other, 1000);
      other.send(packet.rrq('missing.bin'), t.port, '127.0.0.1');
      assert.ok(await fromOther, 'another address has a bucket of its own');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const again = firstReply(sockets[0], 1000);
      sockets[0].send(packet.rrq('missing.bin'), t.port, '127.0.0.1');
      assert.ok(await again, 'a token came back after 250 ms');
    } finally {
      for (const s of [...sockets, other]) s.close();
      await t.stop();
    }
  });

  test("by default a Pi's boot worth of requests at once (20) is all answered", async () => {
    const t = await startTftp({ requestRate: undefined });
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(t)));
    try {
      const results = await Promise.all(clients.map((c) => rawGet(c, 'exact1024.bin', { tsize: '0', blksize: '1024' })));
      for (const r of results) assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
    } finally {
      for (const c of clients) c.close();
      await t.stop();
    }
  });

  test('a retransmitted request of a transfer under way takes no token', async () => {
    const t = await startTftp({ requestRate: { burst: 2, perSecond: 0.01 } });
    const c = await RawClient.open(t);
    try {
      await c.send(packet.rrq('ten-blocks.bin', { timeout: '5' }));
      const o = await c.expect();
      for (let i = 0; i < 5; i++) await c.send(packet.rrq('ten-blocks.bin', { timeout: '5' }));
      await c.send(packet.error(0, 'done'), o.port);
      const d = await RawClient.open(t);
      try {
        await d.send(packet.rrq('exact512.bin'));
        assert.equal((await d.expect()).packet.op, 'data', 'the second token was still there');
      } finally {
        d.close();
      }
    } finally {
      c.close();
      await t.stop();
    }
  });
});

describe('workers and polling', () => {
  test('a bad busyPollUs is refused with a clear error', () => {
    assert.throws(
      () => new TftpServer({ host: '127.0.0.1', port: 0, resolve: async () => bufferSource(Buffer.alloc(0)), busyPollUs: -5 }),
      /busyPollUs/,
    );
  });

  for (const busyPollUs of [0, 100_000]) {
    test(`with busyPollUs ${busyPollUs} (never, or a poll longer than any round trip) files arrive whole`, async () => {
      const t = await startTftp({ busyPollUs });
      const c = await RawClient.open(t);
      try {
        assert.deepEqual((await rawGet(c, 'big.bin', { blksize: '1468' })).content, fixtureFiles['big.bin']);
        assert.deepEqual((await rawGet(c, 'ten-blocks.bin')).content, fixtureFiles['ten-blocks.bin']);
      } finally {
        c.close();
        await t.stop();
      }
    });
  }

  test('a bad worker count is refused with a clear error', () => {
    assert.throws(
      () => new TftpServer({ host: '127.0.0.1', port: 0, resolve: async () => bufferSource(Buffer.alloc(0)), workers: -1 }),
      /workers/,
    );
  });

  test(`with ${threadModes[0].workers} workers, stop() ends the threads and start() on a new server works`, async () => {
    for (let i = 0; i < 2; i++) {
      const t = await startTftp({ workers: threadModes[0].workers });
      const c = await RawClient.open(t);
      try {
        assert.deepEqual((await rawGet(c, 'big.bin', { blksize: '1468' })).content, fixtureFiles['big.bin']);
      } finally {
        c.close();
        await withTimeout(t.stop(), 5000, 'stop');
      }
    }
  });
});
