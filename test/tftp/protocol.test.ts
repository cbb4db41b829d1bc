import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TftpServerOptions } from '../../packages/server/src/boot/tftp/server.ts';
import {
  eachThreadMode,
  fixtureFiles,
  listTree,
  oackOptions,
  packet,
  RawClient,
  type Received,
  type RunningTftp,
  rawGet,
  sha256,
  show,
  sleep,
  startTftp,
  textContent,
  waitFor,
} from './support.ts';

/** Fails unless `got` is an ERROR whose code is one of `codes` and whose message names no server path. */
function assertError(got: Received | null, codes: number[], t: RunningTftp, context = ''): asserts got is Received {
  assert.ok(got, `expected ERROR ${codes.join(' or ')}, got nothing ${context}`);
  const p = got.packet;
  assert.equal(p.op, 'error', `expected ERROR ${codes.join(' or ')}, got ${show(p)} ${context}`);
  if (p.op !== 'error') return;
  assert.ok(codes.includes(p.code), `expected ERROR ${codes.join(' or ')}, got ${show(p)} ${context}`);
  assertNoPath(p.message, t);
}

function assertNoPath(message: string, t: RunningTftp) {
  for (const path of [t.fixtures.base, t.fixtures.root, '/tmp/', '/etc/', '/work/']) {
    assert.ok(!message.includes(path), `ERROR message names a server path: ${JSON.stringify(message)}`);
  }
}

/** Ends a transfer from the client side, so it does not linger until its timeouts. */
async function abort(client: RawClient, port: number) {
  await client.send(packet.error(0, 'test done'), port);
}

/** A request whose first answer is checked, with a client opened and closed around it. */
/**
 * Starts a transfer of big.bin for each client and acknowledges its OACK, so that the transfer holds its slot (one
 * never acknowledged would give its slot up to a new request: test/security/tftp-flood.test.ts). Returns their ports.
 */
async function holdTransfers(clients: RawClient[]): Promise<number[]> {
  const ports: number[] = [];
  for (const c of clients) {
    await c.send(packet.rrq('big.bin', { timeout: '10' }));
    const o = await c.expect();
    assert.equal(o.packet.op, 'oack', show(o.packet));
    await c.send(packet.ack(0), o.port);
    assert.equal((await c.expect()).packet.op, 'data');
    ports.push(o.port);
  }
  return ports;
}

async function ask(t: RunningTftp, request: Buffer, timeoutMs = 1500): Promise<{ client: RawClient; got: Received | null }> {
  const client = await RawClient.open(t);
  await client.send(request);
  return { client, got: await client.receive(timeoutMs) };
}

/** The server still answers a plain read correctly (after abuse). */
async function assertStillServes(t: RunningTftp, context: string) {
  const client = await RawClient.open(t);
  try {
    const result = await rawGet(client, 'exact1024.bin', [], { deadlineMs: 5000 });
    assert.equal(result.error, null, `server no longer serves after ${context}: ${JSON.stringify(result.error)}`);
    assert.deepEqual(result.content, fixtureFiles['exact1024.bin'], `wrong content after ${context}`);
  } finally {
    client.close();
  }
}

/** Runs `fn` against a server of its own (so counts and timings are not disturbed by other tests), then stops it. */
async function withServer(options: Partial<TftpServerOptions>, fn: (t: RunningTftp, open: () => Promise<RawClient>) => Promise<void>) {
  const t = await startTftp(options);
  const clients: RawClient[] = [];
  try {
    await fn(t, async () => {
      const c = await RawClient.open(t);
      clients.push(c);
      return c;
    });
  } finally {
    for (const c of clients) c.close();
    await t.stop();
  }
}

eachThreadMode(() => {
  describe('TFTP protocol over raw datagrams (a port per transfer)', () => {
    let t: RunningTftp;
    const clients: RawClient[] = [];
    const open = async () => {
      const c = await RawClient.open(t);
      clients.push(c);
      return c;
    };

    before(async () => {
      t = await startTftp({ timeoutMs: 300, retries: 2 });
    });

    after(async () => {
      for (const c of clients) c.close();
      await t?.stop();
    });

    test('a read without options gets DATA 1 at once, from a new port (RFC 1350 TID)', () =>
      withServer({ timeoutMs: 300, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('exact1024.bin'));
        const d1 = await c.expect();
        assert.equal(d1.packet.op, 'data', show(d1.packet));
        assert.notEqual(d1.port, t.port, 'DATA must come from a fresh transfer port, not the listening port');
        assert.equal(d1.address, '127.0.0.1');
        if (d1.packet.op === 'data') {
          assert.equal(d1.packet.block, 1);
          assert.deepEqual(d1.packet.payload, fixtureFiles['exact1024.bin'].subarray(0, 512));
        }
        assert.equal(t.server.activeTransfers, 1);
        await c.send(packet.ack(1), d1.port);
        const d2 = await c.expect();
        assert.equal(show(d2.packet), 'DATA 2 (512 bytes)');
        assert.equal(d2.port, d1.port, 'the transfer stays on one port');
        await c.send(packet.ack(2), d1.port);
        const d3 = await c.expect();
        assert.equal(show(d3.packet), 'DATA 3 (0 bytes)', 'a file of a multiple of 512 bytes ends with an empty block');
        await c.send(packet.ack(3), d1.port);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 500), `activeTransfers = ${t.server.activeTransfers}`);
        assert.deepEqual(
          (await c.collect(350)).map((r) => show(r.packet)),
          [],
          'nothing follows the ACK of the last block',
        );
      }));

    test('a 512-byte file is DATA 1 (512 bytes) then an empty DATA 2', async () => {
      const c = await open();
      const r = await rawGet(c, 'exact512.bin', [], { keepBlocks: true });
      assert.deepEqual(r.content, fixtureFiles['exact512.bin']);
      assert.deepEqual(r.blocks, [1, 2]);
    });

    test('an empty file is a single empty DATA 1', async () => {
      const c = await open();
      const r = await rawGet(c, 'empty.bin', [], { keepBlocks: true });
      assert.deepEqual(r.content, Buffer.alloc(0));
      assert.deepEqual(r.blocks, [1]);
    });

    test('OACK carries blksize, tsize (the file size), timeout and windowsize as asked, and DATA waits for ACK 0', async () => {
      const c = await open();
      await c.send(packet.rrq('big.bin', { blksize: '1468', tsize: '0', timeout: '3', windowsize: '8' }));
      const o = await c.expect();
      assert.deepEqual(oackOptions(o.packet), { blksize: '1468', tsize: String(3 * 1024 * 1024), timeout: '3', windowsize: '8' });
      assert.notEqual(o.port, t.port, 'the OACK comes from the transfer port');
      assert.deepEqual(
        (await c.collect(200)).map((r) => show(r.packet)),
        [],
        'no DATA before ACK 0',
      );
      await c.send(packet.ack(0), o.port);
      const window = await c.collect(300, 20);
      assert.deepEqual(
        window.map((r) => show(r.packet)),
        [1, 2, 3, 4, 5, 6, 7, 8].map((b) => `DATA ${b} (1468 bytes)`),
        'a window of 8 blocks of 1468 bytes, then a wait for the ACK',
      );
      const big = fixtureFiles['big.bin'];
      const d8 = window[7].packet;
      if (d8.op === 'data') assert.deepEqual(d8.payload, big.subarray(7 * 1468, 8 * 1468));
      await abort(c, o.port);
    });

    test('tsize 0 on a read is answered with the file size', async () => {
      for (const name of ['big.bin', 'exact512.bin', 'empty.bin', 'aa112233/config.txt']) {
        const c = await open();
        await c.send(packet.rrq(name, { tsize: '0' }));
        const o = await c.expect();
        assert.deepEqual(oackOptions(o.packet), { tsize: String(fixtureFiles[name].length) }, name);
        await abort(c, o.port);
      }
    });

    test('a whole file with blksize 1468, tsize and windowsize 16 arrives intact', async () => {
      const c = await open();
      const r = await rawGet(c, 'big.bin', { blksize: '1468', tsize: '0', windowsize: '16' });
      assert.equal(r.oack?.tsize, String(fixtureFiles['big.bin'].length));
      assert.equal(sha256(r.content!), sha256(fixtureFiles['big.bin']));
    });

    test('blksize 7 is refused with ERROR 8', async () => {
      const { client, got } = await ask(t, packet.rrq('big.bin', { blksize: '7' }));
      clients.push(client);
      assertError(got, [8], t);
    });

    test('blksize 0 and a non-number are refused with ERROR 8 or ignored, never used', async () => {
      for (const value of ['0', 'abc', '-512', '']) {
        const { client, got } = await ask(t, packet.rrq('exact1024.bin', { blksize: value }));
        clients.push(client);
        assert.ok(got, `blksize ${JSON.stringify(value)}: no answer`);
        if (got.packet.op === 'error') assertError(got, [8], t, `blksize ${JSON.stringify(value)}`);
        else if (got.packet.op === 'oack') assert.fail(`blksize ${JSON.stringify(value)} was acknowledged: ${show(got.packet)}`);
        else assert.equal(show(got.packet), 'DATA 1 (512 bytes)', `blksize ${JSON.stringify(value)} ignored means 512-byte blocks`);
        if (got.packet.op !== 'error') await abort(client, got.port);
      }
    });

    test('blksize 70000 is answered with a smaller value (≤ 65464) that DATA then uses', async () => {
      const c = await open();
      await c.send(packet.rrq('big.bin', { blksize: '70000' }));
      const o = await c.expect();
      const size = Number(oackOptions(o.packet).blksize);
      assert.ok(Number.isInteger(size) && size >= 8 && size <= 65464, `OACK blksize ${size}`);
      await c.send(packet.ack(0), o.port);
      const d1 = await c.expect();
      assert.equal(show(d1.packet), `DATA 1 (${size} bytes)`);
      await abort(c, o.port);
    });

    test('blksize 65464 (the maximum) is granted and used', async () => {
      const c = await open();
      const r = await rawGet(c, 'big.bin', { blksize: '65464' });
      assert.equal(r.oack?.blksize, '65464');
      assert.equal(r.dataPackets, Math.floor(fixtureFiles['big.bin'].length / 65464) + 1);
      assert.equal(sha256(r.content!), sha256(fixtureFiles['big.bin']));
    });

    test('blksize 8 (the minimum) is granted and used', async () => {
      const c = await open();
      const r = await rawGet(c, 'aa112233/config.txt', { blksize: '8' });
      assert.equal(r.oack?.blksize, '8');
      assert.equal(r.dataPackets, Math.floor(fixtureFiles['aa112233/config.txt'].length / 8) + 1);
      assert.deepEqual(r.content, fixtureFiles['aa112233/config.txt']);
    });

    test('an unknown option alone gets DATA 1 directly, no OACK', async () => {
      const c = await open();
      const r = await rawGet(c, 'exact1024.bin', { 'x-unknown': 'yes', rollover: '0' });
      assert.equal(r.oack, null, 'no OACK for options the server does not know');
      assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
    });

    test('an unknown option next to a known one is left out of the OACK', async () => {
      const c = await open();
      await c.send(
        packet.rrq('big.bin', [
          ['x-unknown', 'yes'],
          ['blksize', '1024'],
          ['multicast', ''],
        ]),
      );
      const o = await c.expect();
      assert.deepEqual(oackOptions(o.packet), { blksize: '1024' });
      await abort(c, o.port);
    });

    test('option names are case-insensitive (RFC 2347)', async () => {
      const c = await open();
      await c.send(packet.rrq('big.bin', { BlkSize: '1024', TSIZE: '0' }));
      const o = await c.expect();
      assert.deepEqual(oackOptions(o.packet), { blksize: '1024', tsize: String(fixtureFiles['big.bin'].length) });
      await abort(c, o.port);
    });

    test('the mode is case-insensitive (RFC 1350): "OCTET" and "NetAscii" are served', async () => {
      const c = await open();
      const r = await rawGet(c, 'exact1024.bin', [], { mode: 'OCTET' });
      assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
      const c2 = await open();
      const r2 = await rawGet(c2, 'text.txt', [], { mode: 'NetAscii' });
      assert.equal(r2.content?.toString('latin1'), textContent.replaceAll('\n', '\r\n'));
    });

    test('an unknown mode ("mail", "binary", "") gets an ERROR and no data', async () => {
      for (const mode of ['mail', 'binary', '']) {
        const { client, got } = await ask(t, packet.rrq('exact1024.bin', [], mode));
        clients.push(client);
        assertError(got, [0, 4], t, `mode ${JSON.stringify(mode)}`);
      }
    });

    test('a duplicated option gets one value in the OACK or ERROR 8', async () => {
      const c = await open();
      await c.send(
        packet.rrq('big.bin', [
          ['blksize', '1024'],
          ['blksize', '2048'],
          ['tsize', '0'],
          ['TSIZE', '0'],
        ]),
      );
      const got = await c.expect();
      if (got.packet.op === 'error') assertError(got, [8], t);
      else {
        const options = oackOptions(got.packet); // throws when a name appears twice
        assert.ok(['1024', '2048'].includes(options.blksize), `blksize ${options.blksize}`);
        await c.send(packet.ack(0), got.port);
        const d1 = await c.expect();
        assert.equal(show(d1.packet), `DATA 1 (${options.blksize} bytes)`);
        await abort(c, got.port);
      }
      await assertStillServes(t, 'a duplicated option');
    });

    test('timeout outside 1..255 and windowsize 0 are refused (ERROR 8) or left out of the OACK', async () => {
      for (const [name, value] of [
        ['timeout', '0'],
        ['timeout', '256'],
        ['timeout', 'x'],
        ['windowsize', '0'],
        ['windowsize', 'x'],
      ]) {
        const c = await open();
        await c.send(packet.rrq('exact1024.bin', [[name, value]]));
        const got = await c.expect();
        const what = `${name} ${value}: ${show(got.packet)}`;
        if (got.packet.op === 'error') assertError(got, [8], t, what);
        else if (got.packet.op === 'oack') assert.ok(!(name in oackOptions(got.packet)), what);
        else assert.equal(show(got.packet), 'DATA 1 (512 bytes)', what);
        if (got.packet.op !== 'error') await abort(c, got.port);
      }
    });

    test('timeout 255 and windowsize 65535 are acceptable values', async () => {
      const c = await open();
      await c.send(packet.rrq('exact1024.bin', { timeout: '255', windowsize: '65535' }));
      const o = await c.expect();
      const options = oackOptions(o.packet);
      assert.equal(options.timeout, '255');
      const w = Number(options.windowsize);
      assert.ok(w >= 1 && w <= 65535, `windowsize ${options.windowsize}`);
      await abort(c, o.port);
    });

    test('netascii: LF goes out as CR LF, and every CR in the file (also one before LF) as CR NUL', async () => {
      const c = await open();
      const r = await rawGet(c, 'text.txt', [], { mode: 'netascii' });
      assert.equal(r.content?.toString('latin1'), textContent.replaceAll('\n', '\r\n'));
      const c2 = await open();
      const r2 = await rawGet(c2, 'cr.txt', [], { mode: 'netascii' });
      // File bytes: a CR b CR LF c LF  →  a CR NUL b CR NUL CR LF c CR LF
      assert.equal(JSON.stringify(r2.content?.toString('latin1')), JSON.stringify('a\r\0b\r\0\r\nc\r\n'));
    });

    test('a write request is refused with ERROR 2 or 4 and nothing is written', async () => {
      const before = listTree(t.fixtures.root);
      for (const [name, options] of [
        ['uploaded.bin', {}],
        ['exact512.bin', {}],
        ['new/dir/file.bin', { blksize: '1024', tsize: '10' }],
      ] as [string, Record<string, string>][]) {
        const c = await open();
        await c.send(packet.wrq(name, options));
        const got = await c.expect();
        assertError(got, [2, 4], t, `WRQ ${name}`);
        // A client that ignores the error and sends data anyway, to both ports.
        await c.send(packet.data(1, Buffer.from('overwrite attempt')), got.port);
        await c.send(packet.data(1, Buffer.from('overwrite attempt')));
        await c.collect(100);
      }
      assert.deepEqual(listTree(t.fixtures.root), before);
      assert.deepEqual(readFileSync(`${t.fixtures.root}/exact512.bin`), fixtureFiles['exact512.bin']);
    });

    test('the Pi 5 name "<serial>//config.txt", a leading "/" and backslashes reach the same file', async () => {
      for (const name of ['aa112233//config.txt', '/aa112233/config.txt', 'aa112233\\config.txt', '//aa112233///config.txt']) {
        const c = await open();
        const r = await rawGet(c, name);
        assert.equal(r.error, null, `${name}: ${JSON.stringify(r.error)}`);
        assert.deepEqual(r.content, fixtureFiles['aa112233/config.txt'], name);
      }
    });

    test('a symlink inside the root to a file inside the root is served', async () => {
      const c = await open();
      const r = await rawGet(c, 'inside-link.txt');
      assert.deepEqual(r.content, fixtureFiles['exact512.bin']);
    });

    test('a missing file gets ERROR 1 and the message names no server path', async () => {
      for (const name of ['no-such-file', 'aa112233/none.txt', 'deeper/and/deeper.bin']) {
        const { client, got } = await ask(t, packet.rrq(name));
        clients.push(client);
        assertError(got, [1], t, name);
      }
    });

    test('a directory is not served (ERROR 1 or 2)', async () => {
      for (const name of ['aa112233', 'aa112233/', '/']) {
        const { client, got } = await ask(t, packet.rrq(name));
        clients.push(client);
        assertError(got, [1, 2], t, JSON.stringify(name));
      }
    });

    test('traversal in any spelling gets ERROR 2 and no data', async () => {
      for (const name of [
        '../etc/passwd',
        '/../../etc/passwd',
        '..\\..\\etc\\passwd',
        'aa112233/../../x',
        '../x',
        '..',
        'aa112233/../../secret.txt',
        '.\\..\\x',
        '/..//x',
        '..//..//etc/passwd',
        'aa112233\\..\\..\\x',
        'escape.txt', // a symlink out of the root
      ]) {
        const { client, got } = await ask(t, packet.rrq(name));
        clients.push(client);
        assertError(got, [2], t, JSON.stringify(name));
      }
    });

    test('URL-encoded dots are not decoded into a traversal (ERROR 1 or 2, no data)', async () => {
      for (const name of ['%2e%2e/etc/passwd', '%2e%2e/x', '%2E%2E%2Fx', '..%2fx', '%252e%252e/x']) {
        const { client, got } = await ask(t, packet.rrq(name));
        clients.push(client);
        assertError(got, [1, 2], t, JSON.stringify(name));
      }
    });

    test('an overlong name (600 and 2000 characters) gets an ERROR, not the file it would resolve to', async () => {
      for (const name of [`${'./'.repeat(298)}../x`, `${'a/'.repeat(299)}x.`, `${'../'.repeat(666)}xx`]) {
        const { client, got } = await ask(t, packet.rrq(name));
        clients.push(client);
        assertError(got, [0, 1, 2, 4], t, `${name.length}-character name`);
      }
    });

    test('a NUL byte or control characters in a name do not reach the file system', async () => {
      // "exact512.bin\0.txt": a C-string reader would open exact512.bin; the request's file name ends at the first NUL.
      const { client, got } = await ask(t, Buffer.from('\0\x01../x\0octet\0', 'latin1'));
      clients.push(client);
      assertError(got, [2], t);
      const { client: c2, got: got2 } = await ask(t, Buffer.from('\0\x01exact512.bin\n\0octet\0', 'latin1'));
      clients.push(c2);
      assertError(got2, [1, 2, 4], t, 'a newline in the name');
    });

    test('malformed and truncated packets get ERROR 4 or silence, and the server serves the next client', async () => {
      const malformed: [string, Buffer][] = [
        ['an empty datagram', Buffer.alloc(0)],
        ['one byte', Buffer.from([0])],
        ['an opcode alone', Buffer.from([0, 1])],
        ['a name without NUL', Buffer.from('\0\x01exact512.bin', 'latin1')],
        ['a name without mode', Buffer.from('\0\x01exact512.bin\0', 'latin1')],
        ['a mode without NUL', Buffer.from('\0\x01exact512.bin\0octet', 'latin1')],
        ['an option without value', Buffer.from('\0\x01exact512.bin\0octet\0blksize\0', 'latin1')],
        ['an option value without NUL', Buffer.from('\0\x01exact512.bin\0octet\0blksize\x001024', 'latin1')],
        ['opcode 0', Buffer.from('\0\0exact512.bin\0octet\0', 'latin1')],
        ['opcode 7', Buffer.from('\0\x07exact512.bin\0octet\0', 'latin1')],
        ['opcode 65535', Buffer.from('\xff\xffexact512.bin\0octet\0', 'latin1')],
        ['an OACK to the server', Buffer.from('\0\x06blksize\x001024\0', 'latin1')],
        ['a 3-byte ACK', Buffer.from([0, 4, 0])],
        ['a DATA with no transfer', packet.data(1, Buffer.from('hello'))],
      ];
      // Each from its own port, all at once; then every socket's answers are read.
      const sockets = await Promise.all(malformed.map(() => open()));
      await Promise.all(malformed.map(([, data], i) => sockets[i].send(data)));
      const emptyName = await open();
      await emptyName.send(Buffer.from('\0\x01\0octet\0', 'latin1'));
      await sleep(200);
      for (const [i, [what]] of malformed.entries()) {
        const replies = await sockets[i].collect(1, 5);
        for (const r of replies) {
          assert.equal(r.packet.op, 'error', `${what}: got ${show(r.packet)}`);
          if (r.packet.op === 'error') assert.ok([0, 4, 5].includes(r.packet.code), `${what}: got ${show(r.packet)}, expected ERROR 4`);
        }
        assert.ok(replies.length <= 1, `${what}: ${replies.length} replies`);
      }
      for (const r of await emptyName.collect(1, 5)) assertError(r, [1, 2, 4], t, 'an empty name');
      await assertStillServes(t, 'malformed packets');
    });

    test('an ERROR or an ACK sent to the listening port is never answered with DATA', async () => {
      const c = await open();
      await c.send(packet.error(0, 'hello'));
      await c.send(packet.ack(0));
      await c.send(packet.ack(1));
      const replies = await c.collect(200);
      const errors = replies.filter((r) => r.packet.op === 'error');
      assert.equal(errors.length, replies.length, replies.map((r) => show(r.packet)).join(', '));
      assert.ok(replies.length <= 2, 'an ERROR is never answered (RFC 1350)');
    });

    test('a packet from another port to a transfer port is kept out (no DATA, at most ERROR 5), and the transfer continues', async () => {
      const c = await open();
      const intruder = await open();
      await c.send(packet.rrq('ten-blocks.bin'));
      const d1 = await c.expect();
      assert.equal(show(d1.packet), 'DATA 1 (512 bytes)');
      // The transfer socket is connected to its client, as tftpd-hpa's are: the kernel answers strangers with ICMP
      // port unreachable, which RFC 1350's "should send an error packet" allows in place of ERROR 5.
      await intruder.send(packet.ack(1), d1.port);
      const reply = await intruder.receive(100);
      if (reply) assertError(reply, [5], t);
      assert.deepEqual(
        (await c.collect(100)).map((r) => show(r.packet)),
        [],
        "the intruder's ACK must not advance the transfer",
      );
      const chunks = [d1.packet.op === 'data' ? d1.packet.payload : Buffer.alloc(0)];
      for (let block = 1; block <= 10; block++) {
        await c.send(packet.ack(block), d1.port);
        if (block === 10) break;
        const d = await c.expect();
        assert.equal(d.packet.op === 'data' && d.packet.block, block + 1, show(d.packet));
        if (d.packet.op === 'data') chunks.push(d.packet.payload);
        if (block === 5) {
          await intruder.send(packet.error(0, 'go away'), d1.port);
          await intruder.send(packet.data(1, Buffer.from('x')), d1.port);
        }
      }
      assert.deepEqual(Buffer.concat(chunks), fixtureFiles['ten-blocks.bin']);
    });

    test('a retransmitted RRQ (same client port) leaves the first transfer intact, and every transfer is counted', () =>
      withServer({ timeoutMs: 300, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('ten-blocks.bin', { blksize: '512' }));
        const o1 = await c.expect();
        assert.equal(o1.packet.op, 'oack', show(o1.packet));
        await c.send(packet.rrq('ten-blocks.bin', { blksize: '512' }));
        const more = await c.collect(200);
        const ports = new Set([o1.port, ...more.map((r) => r.port)]);
        assert.equal(
          t.server.activeTransfers,
          ports.size,
          `transfers answering from ${ports.size} ports, activeTransfers says ${t.server.activeTransfers}`,
        );
        // The client goes on with the first transfer and tells any other one it is unknown (RFC 1350).
        for (const port of ports) if (port !== o1.port) await c.send(packet.error(5, 'Unknown transfer ID'), port);
        await c.send(packet.ack(0), o1.port);
        const chunks: Buffer[] = [];
        for (let block = 1; block <= 10; block++) {
          const d = await c.expect(1000);
          assert.equal(d.port, o1.port);
          assert.equal(d.packet.op === 'data' && d.packet.block, block, `expected DATA ${block}, got ${show(d.packet)}`);
          if (d.packet.op === 'data') chunks.push(d.packet.payload);
          await c.send(packet.ack(block), o1.port);
        }
        assert.deepEqual(Buffer.concat(chunks), fixtureFiles['ten-blocks.bin']);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 1000), `activeTransfers = ${t.server.activeTransfers}`);
      }));

    test("duplicate ACKs do not duplicate DATA (no Sorcerer's Apprentice)", async () => {
      const c = await open();
      await c.send(packet.rrq('ten-blocks.bin', { timeout: '10' }));
      const o = await c.expect();
      assert.equal(oackOptions(o.packet).timeout, '10');
      const counts = new Map<number, number>();
      await c.send(packet.ack(0), o.port);
      await c.send(packet.ack(0), o.port);
      const deadline = Date.now() + 5000;
      let last = 0;
      while (last < 10 && Date.now() < deadline) {
        const r = await c.receive(1000);
        if (!r) break;
        assert.equal(r.packet.op, 'data', show(r.packet));
        if (r.packet.op !== 'data') break;
        counts.set(r.packet.block, (counts.get(r.packet.block) ?? 0) + 1);
        last = Math.max(last, r.packet.block);
        await c.send(packet.ack(r.packet.block), o.port);
        await c.send(packet.ack(r.packet.block), o.port);
      }
      for (const r of await c.collect(400)) {
        if (r.packet.op === 'data') counts.set(r.packet.block, (counts.get(r.packet.block) ?? 0) + 1);
      }
      assert.deepEqual(
        [...counts.entries()].sort((a, b) => a[0] - b[0]),
        Array.from({ length: 10 }, (_, i) => [i + 1, 1]),
        'each block exactly once',
      );
    });

    test('without an ACK, DATA 1 is sent again after timeoutMs, the wait doubles, and the transfer ends after `retries`', () =>
      withServer({ timeoutMs: 150, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('exact1024.bin'));
        // 150 + 300 + 600 ms, then the transfer is given up.
        const seen = await c.collect(1500, 10);
        const data = seen.filter((r) => r.packet.op === 'data');
        assert.deepEqual(
          data.map((r) => show(r.packet)),
          ['DATA 1 (512 bytes)', 'DATA 1 (512 bytes)', 'DATA 1 (512 bytes)'],
          'the first DATA 1 and retries = 2 retransmissions',
        );
        for (const r of seen.filter((r) => r.packet.op !== 'data')) assertError(r, [0], t, 'a give-up ERROR may follow');
        const gap1 = data[1].at - data[0].at;
        const gap2 = data[2].at - data[1].at;
        // Lower bounds only: a timer never fires early, but a busy machine may fire it late.
        assert.ok(gap1 >= 120, `first retransmission after ${gap1.toFixed(0)} ms, timeoutMs is 150`);
        assert.ok(gap2 >= gap1 * 1.5, `the wait doubles: ${gap1.toFixed(0)} ms then ${gap2.toFixed(0)} ms`);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 1500), `activeTransfers = ${t.server.activeTransfers}`);
      }));

    test('the timeout option (seconds) overrides timeoutMs for retransmissions', async () => {
      const c = await open();
      await c.send(packet.rrq('exact1024.bin', { timeout: '1' }));
      const o1 = await c.expect();
      assert.equal(oackOptions(o1.packet).timeout, '1');
      const o2 = await c.expect(2500);
      assert.equal(o2.packet.op, 'oack', `the OACK is retransmitted: ${show(o2.packet)}`);
      const gap = o2.at - o1.at;
      assert.ok(gap >= 900, `OACK retransmitted after ${gap.toFixed(0)} ms, the timeout option asked for 1 s`);
      await abort(c, o1.port);
    });

    test('an ERROR from the client after the OACK ends the transfer (the Pi bootloader aborts its tsize probe this way)', () =>
      withServer({ timeoutMs: 150, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('big.bin', { tsize: '0', blksize: '1024' }));
        const o = await c.expect();
        assert.equal(o.packet.op, 'oack', show(o.packet));
        assert.equal(t.server.activeTransfers, 1);
        await c.send(packet.error(0, 'Abort'), o.port);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 500), `activeTransfers = ${t.server.activeTransfers}`);
        assert.deepEqual(
          (await c.collect(400)).map((r) => show(r.packet)),
          [],
          'nothing is sent after the client ended the transfer (the OACK would be resent after 150 ms)',
        );
      }));

    test('an ERROR from the client in the middle of a transfer ends it', () =>
      withServer({ timeoutMs: 150, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('ten-blocks.bin'));
        const d1 = await c.expect();
        await c.send(packet.ack(1), d1.port);
        await c.expect();
        await c.send(packet.error(3, 'Disk full'), d1.port);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 500), `activeTransfers = ${t.server.activeTransfers}`);
        assert.deepEqual(
          (await c.collect(400)).map((r) => show(r.packet)),
          [],
        );
      }));

    test('windowsize: an ACK inside the window makes the server resend from the block after it (RFC 7440)', async () => {
      const c = await open();
      await c.send(packet.rrq('big.bin', { windowsize: '4', timeout: '10' }));
      const o = await c.expect();
      assert.equal(oackOptions(o.packet).windowsize, '4');
      await c.send(packet.ack(0), o.port);
      const w1 = await c.collect(200, 10);
      assert.deepEqual(
        w1.map((r) => show(r.packet)),
        ['DATA 1 (512 bytes)', 'DATA 2 (512 bytes)', 'DATA 3 (512 bytes)', 'DATA 4 (512 bytes)'],
      );
      await c.send(packet.ack(2), o.port); // as if block 3 had been lost
      const w2 = await c.collect(200, 10);
      assert.deepEqual(
        w2.map((r) => show(r.packet)),
        ['DATA 3 (512 bytes)', 'DATA 4 (512 bytes)', 'DATA 5 (512 bytes)', 'DATA 6 (512 bytes)'],
      );
      const d3 = w2[0].packet;
      if (d3.op === 'data') assert.deepEqual(d3.payload, fixtureFiles['big.bin'].subarray(1024, 1536));
      await abort(c, o.port);
    });

    test('block numbers roll over from 65535 to 0 (blksize 8, windowsize 64, 65,549 blocks)', async () => {
      const c = await open();
      const r = await rawGet(c, 'rollover.bin', { blksize: '8', windowsize: '64' }, { keepBlocks: true, deadlineMs: 40_000 });
      assert.equal(r.error, null, JSON.stringify(r.error));
      const at = r.blocks.indexOf(65535);
      assert.ok(at >= 0, 'block 65535 was sent');
      assert.equal(r.blocks[at + 1], 0, 'the block after 65535 is 0');
      assert.equal(r.blocks.at(-1), (fixtureFiles['rollover.bin'].length / 8 + 1) & 0xffff);
      assert.equal(r.content!.length, fixtureFiles['rollover.bin'].length);
      assert.equal(sha256(r.content!), sha256(fixtureFiles['rollover.bin']));
    });
  });

  describe('TFTP protocol over raw datagrams (singlePort)', () => {
    let t: RunningTftp;
    const clients: RawClient[] = [];
    const open = async () => {
      const c = await RawClient.open(t);
      clients.push(c);
      return c;
    };

    before(async () => {
      t = await startTftp({ singlePort: true, timeoutMs: 300, retries: 2 });
    });

    after(async () => {
      for (const c of clients) c.close();
      await t?.stop();
    });

    test('OACK, DATA and ERROR all come from the listening port', async () => {
      const c = await open();
      const r = await rawGet(c, 'big.bin', { blksize: '1468', windowsize: '8', tsize: '0' });
      assert.equal(r.transferPort, t.port);
      assert.equal(sha256(r.content!), sha256(fixtureFiles['big.bin']));
      await c.send(packet.rrq('no-such-file'));
      const e = await c.expect();
      assertError(e, [1], t);
      assert.equal(e.port, t.port);
    });

    test('two transfers from two client ports at once do not mix', async () => {
      const [a, b] = [await open(), await open()];
      const [ra, rb] = await Promise.all([rawGet(a, 'big.bin', { blksize: '1024' }), rawGet(b, 'exact1024.bin', [])]);
      assert.equal(sha256(ra.content!), sha256(fixtureFiles['big.bin']));
      assert.deepEqual(rb.content, fixtureFiles['exact1024.bin']);
    });

    test('an ACK from an unknown port gets ERROR 5 or silence, and a running transfer is unaffected', async () => {
      const c = await open();
      const stranger = await open();
      await c.send(packet.rrq('ten-blocks.bin', { timeout: '10' }));
      const o = await c.expect();
      assert.equal(o.packet.op, 'oack');
      await stranger.send(packet.ack(0));
      for (const r of await stranger.collect(200)) assertError(r, [4, 5], t);
      assert.deepEqual(
        (await c.collect(100)).map((r) => show(r.packet)),
        [],
        "a stranger's ACK must not start the transfer",
      );
      await c.send(packet.ack(0), o.port);
      assert.equal(show((await c.expect()).packet), 'DATA 1 (512 bytes)');
      await abort(c, o.port);
    });

    test('a request repeated at once from the same client port runs one transfer, and nothing is left running after the abort', () =>
      withServer({ singlePort: true, timeoutMs: 150, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('ten-blocks.bin', { tsize: '0' }));
        await c.send(packet.rrq('ten-blocks.bin', { tsize: '0' }));
        const replies = await c.collect(100);
        assert.ok(replies.length >= 1 && replies.every((r) => r.packet.op === 'oack'), replies.map((r) => show(r.packet)).join(', '));
        assert.equal(t.server.activeTransfers, 1);
        await c.send(packet.error(0, 'test done'), t.port);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 500));
        // A second, untracked transfer would retransmit its OACK after timeoutMs (150 ms).
        assert.deepEqual(
          (await c.collect(500)).map((r) => show(r.packet)),
          [],
          'the server kept sending after the client aborted',
        );
      }));

    test('a retransmitted RRQ after the OACK is not an error: the transfer goes on (the Pi bootloader retransmits)', () =>
      withServer({ singlePort: true, timeoutMs: 300, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('ten-blocks.bin', { tsize: '0' }));
        const o = await c.expect();
        assert.equal(o.packet.op, 'oack', show(o.packet));
        await c.send(packet.rrq('ten-blocks.bin', { tsize: '0' }));
        const replies = await c.collect(150);
        for (const r of replies) assert.equal(r.packet.op, 'oack', `a retransmitted RRQ was answered with ${show(r.packet)}`);
        await c.send(packet.ack(0), t.port);
        const chunks: Buffer[] = [];
        for (let block = 1; block <= 10; block++) {
          const d = await c.expect(1000);
          assert.equal(d.packet.op === 'data' && d.packet.block, block, `expected DATA ${block}, got ${show(d.packet)}`);
          if (d.packet.op === 'data') chunks.push(d.packet.payload);
          await c.send(packet.ack(block), t.port);
        }
        assert.deepEqual(Buffer.concat(chunks), fixtureFiles['ten-blocks.bin']);
      }));

    test('a retransmitted RRQ after DATA 1 is not an error: the transfer goes on', () =>
      withServer({ singlePort: true, timeoutMs: 300, retries: 2 }, async (t, open) => {
        const c = await open();
        await c.send(packet.rrq('ten-blocks.bin'));
        const d1 = await c.expect();
        assert.equal(show(d1.packet), 'DATA 1 (512 bytes)');
        await c.send(packet.rrq('ten-blocks.bin'));
        const replies = await c.collect(150);
        for (const r of replies)
          assert.equal(show(r.packet), 'DATA 1 (512 bytes)', `a retransmitted RRQ was answered with ${show(r.packet)}`);
        await c.send(packet.ack(1), t.port);
        const d2 = await c.expect(1000);
        assert.equal(show(d2.packet), 'DATA 2 (512 bytes)');
        await abort(c, t.port);
      }));
  });

  describe('TFTP over IPv6 (::1), raw', () => {
    let t: RunningTftp;
    before(async () => {
      t = await startTftp({ host: '::1', timeoutMs: 300, retries: 2 });
    });
    after(async () => {
      await t?.stop();
    });

    test('a read over ::1 with options arrives intact, from ::1', async () => {
      const c = await RawClient.open(t);
      try {
        const r = await rawGet(c, 'big.bin', { blksize: '1428', tsize: '0', windowsize: '4' });
        assert.equal(sha256(r.content!), sha256(fixtureFiles['big.bin']));
        const a = await RawClient.open(t);
        await a.send(packet.rrq('../x'));
        const e = await a.expect();
        assertError(e, [2], t);
        assert.equal(e.address, '::1');
        a.close();
      } finally {
        c.close();
      }
    });
  });

  describe('TFTP server limits and lifecycle', () => {
    test('beyond maxTransfers (all acknowledged) a request gets ERROR 0 "server busy", and is served again once a transfer ends', async () => {
      const t = await startTftp({ maxTransfers: 2, timeoutMs: 300, retries: 2 });
      const cs = await Promise.all([1, 2, 3].map(() => RawClient.open(t)));
      try {
        const ports = await holdTransfers(cs.slice(0, 2));
        await cs[2].send(packet.rrq('big.bin', { timeout: '10' }));
        const busy = await cs[2].expect();
        assertError(busy, [0], t);
        if (busy.packet.op === 'error') assert.match(busy.packet.message, /busy/i);
        assert.equal(t.server.activeTransfers, 2);
        await abort(cs[0], ports[0]);
        assert.ok(await waitFor(() => t.server.activeTransfers === 1, 500));
        const r = await rawGet(cs[2], 'exact1024.bin');
        assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
        await abort(cs[1], ports[1]);
      } finally {
        for (const c of cs) c.close();
        await t.stop();
      }
    });

    test('beyond maxPerClient (all acknowledged) a request from the same address is refused with an ERROR', async () => {
      const t = await startTftp({ maxPerClient: 2, maxTransfers: 100, timeoutMs: 300, retries: 2 });
      const cs = await Promise.all([1, 2, 3].map(() => RawClient.open(t)));
      try {
        const ports = await holdTransfers(cs.slice(0, 2));
        await cs[2].send(packet.rrq('big.bin', { timeout: '10' }));
        assertError(await cs[2].expect(), [0], t);
        assert.equal(t.server.activeTransfers, 2);
        for (let i = 0; i < 2; i++) await abort(cs[i], ports[i]);
        assert.ok(await waitFor(() => t.server.activeTransfers === 0, 500));
      } finally {
        for (const c of cs) c.close();
        await t.stop();
      }
    });

    for (const limit of ['maxTransfers', 'maxPerClient'] as const) {
      test(`${limit} holds when many requests arrive at once`, async () => {
        const t = await startTftp({ [limit]: 3, timeoutMs: 300, retries: 2 });
        const cs = await Promise.all(Array.from({ length: 12 }, () => RawClient.open(t)));
        try {
          await Promise.all(cs.map((c) => c.send(packet.rrq('big.bin', { tsize: '0' }))));
          const answers = await Promise.all(cs.map((c) => c.expect(2000)));
          const granted = answers.filter((a) => a.packet.op === 'oack');
          for (const a of answers) if (a.packet.op !== 'oack') assertError(a, [0], t, 'server busy');
          assert.ok(granted.length <= 3, `${granted.length} transfers granted with ${limit} 3`);
          assert.ok(t.server.activeTransfers <= 3, `activeTransfers = ${t.server.activeTransfers} with ${limit} 3`);
          for (const [i, a] of answers.entries()) if (a.packet.op === 'oack') await abort(cs[i], a.port);
          assert.ok(await waitFor(() => t.server.activeTransfers === 0, 1000));
        } finally {
          for (const c of cs) c.close();
          await t.stop();
        }
      });
    }

    test('stop() ends transfers in progress, and frees the port', async () => {
      const t = await startTftp({ timeoutMs: 300, retries: 2 });
      const [a, b] = [await RawClient.open(t), await RawClient.open(t)];
      let stopped = false;
      try {
        await a.send(packet.rrq('big.bin', { timeout: '10' }));
        assert.equal((await a.expect()).packet.op, 'oack');
        await b.send(packet.rrq('ten-blocks.bin'));
        assert.equal((await b.expect()).packet.op, 'data');
        assert.equal(t.server.activeTransfers, 2);
        await t.stop();
        stopped = true;
        assert.equal(t.server.activeTransfers, 0);
        // The listening port can be bound again.
        const s = dgram.createSocket('udp4');
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(t.port, '127.0.0.1', () => resolve());
        });
        s.close();
        // Nothing but a farewell ERROR is sent after stop() resolved.
        for (const c of [a, b]) {
          const late = (await c.collect(500)).filter((r) => r.packet.op !== 'error');
          assert.deepEqual(
            late.map((r) => show(r.packet)),
            [],
          );
        }
      } finally {
        a.close();
        b.close();
        if (!stopped) await t.stop();
      }
    });

    test('start() reports the address and the ephemeral port it bound', async () => {
      const t = await startTftp({ port: 0 });
      try {
        assert.ok(t.port > 0 && t.port < 65536);
        const c = await RawClient.open(t);
        await c.send(packet.rrq('exact512.bin'));
        assert.equal((await c.expect()).packet.op, 'data');
        c.close();
      } finally {
        await t.stop();
        await sleep(0);
      }
    });
  });

  /** File descriptors of this process that point into the fixtures (open served files). */
  function openFixtureFiles(t: RunningTftp): string[] {
    const out: string[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        if (target.startsWith(t.fixtures.base)) out.push(target.slice(t.fixtures.base.length));
      } catch {}
    }
    return out.sort();
  }

  function openSockets(): number {
    let n = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
      } catch {}
    }
    return n;
  }

  describe('TFTP transfers release their file and socket however they end', () => {
    let t: RunningTftp;
    let socketsBefore = 0;

    before(async () => {
      t = await startTftp({ timeoutMs: 100, retries: 1 });
      socketsBefore = openSockets();
    });

    after(async () => {
      await t?.stop();
    });

    /** Runs a scenario with its own client, then requires no open served file and no extra socket. */
    async function scenario(run: (c: RawClient) => Promise<void>) {
      const c = await RawClient.open(t);
      try {
        await run(c);
      } finally {
        c.close();
      }
      assert.ok(await waitFor(() => t.server.activeTransfers === 0, 2000), `activeTransfers = ${t.server.activeTransfers}`);
      await waitFor(() => openFixtureFiles(t).length === 0 && openSockets() <= socketsBefore, 1000);
      assert.deepEqual(openFixtureFiles(t), [], 'served files still open after the transfer ended');
      assert.ok(
        openSockets() <= socketsBefore,
        `sockets: ${socketsBefore} before, ${openSockets()} after (a transfer port was not closed)`,
      );
    }

    test('a completed transfer', () =>
      scenario(async (c) => {
        const r = await rawGet(c, 'exact1024.bin', { tsize: '0' });
        assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
      }));

    test('a completed netascii transfer', () =>
      scenario(async (c) => {
        await rawGet(c, 'text.txt', [], { mode: 'netascii' });
      }));

    test('a refused option (blksize 7 → ERROR 8)', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('big.bin', { blksize: '7' }));
        assertError(await c.expect(), [8], t);
      }));

    test('a refused option next to valid ones (tsize, then blksize 7)', () =>
      scenario(async (c) => {
        await c.send(
          packet.rrq('big.bin', [
            ['tsize', '0'],
            ['blksize', '7'],
          ]),
        );
        assertError(await c.expect(), [8], t);
      }));

    test('a client ERROR after the OACK', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('big.bin', { tsize: '0' }));
        const o = await c.expect();
        await c.send(packet.error(0, 'Abort'), o.port);
      }));

    test('a client ERROR in the middle of the data', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('ten-blocks.bin'));
        const d = await c.expect();
        await c.send(packet.error(0, 'Abort'), d.port);
      }));

    test('a client that goes silent (the server gives up after its retries)', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('ten-blocks.bin'));
        await c.expect();
      }));

    test('a client that goes silent after the OACK', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('ten-blocks.bin', { blksize: '1024' }));
        await c.expect();
      }));

    test('a missing file, a traversal, a directory and a write request', () =>
      scenario(async (c) => {
        for (const request of [
          packet.rrq('missing.bin'),
          packet.rrq('../x'),
          packet.rrq('escape.txt'),
          packet.rrq('aa112233'),
          packet.wrq('w.bin'),
        ]) {
          await c.send(request);
          assertError(await c.expect(), [1, 2, 4], t);
        }
      }));

    test('an unknown mode', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('exact512.bin', [], 'mail'));
        assertError(await c.expect(), [0, 4], t);
      }));

    test('two requests for different files from the same client port, both abandoned', () =>
      scenario(async (c) => {
        await c.send(packet.rrq('big.bin', { tsize: '0' }));
        const first = await c.expect();
        await c.send(packet.rrq('ten-blocks.bin'));
        const second = await c.expect();
        assert.ok(['oack', 'data', 'error'].includes(second.packet.op), show(second.packet));
        assert.equal(first.packet.op, 'oack', show(first.packet));
      }));

    test('a request that is refused as busy (maxPerClient)', async () => {
      const t2 = await startTftp({ timeoutMs: 200, retries: 1, maxPerClient: 1 });
      const [a, b] = [await RawClient.open(t2), await RawClient.open(t2)];
      try {
        await a.send(packet.rrq('big.bin', { tsize: '0' }));
        const o = await a.expect();
        await a.send(packet.ack(0), o.port);
        await a.expect();
        await b.send(packet.rrq('exact512.bin', { tsize: '0' }));
        assertError(await b.expect(), [0], t2);
        await a.send(packet.error(0, 'Abort'), o.port);
        assert.ok(await waitFor(() => t2.server.activeTransfers === 0, 1000));
        await waitFor(() => openFixtureFiles(t2).length === 0, 1000);
        assert.deepEqual(openFixtureFiles(t2), []);
      } finally {
        a.close();
        b.close();
        await t2.stop();
      }
    });

    test('stop() ends every transfer, also two started from the same client port', async () => {
      const t2 = await startTftp({ timeoutMs: 100, retries: 2 });
      const c = await RawClient.open(t2);
      try {
        await c.send(packet.rrq('ten-blocks.bin'));
        const first = await c.expect();
        await c.send(packet.rrq('exact1024.bin'));
        const second = await c.expect();
        assert.equal(first.packet.op, 'data', show(first.packet));
        assert.equal(second.packet.op, 'data', show(second.packet));
        await t2.server.stop();
        const late = (await c.collect(400)).filter((r) => r.packet.op !== 'error');
        assert.deepEqual(
          late.map((r) => `${show(r.packet)} from port ${r.port}`),
          [],
          'a transfer kept sending after stop() resolved',
        );
        assert.deepEqual(openFixtureFiles(t2), [], 'a served file is still open after stop()');
      } finally {
        c.close();
        await sleep(800); // let an orphaned transfer run out (100 + 200 + 400 ms) before the fixtures go
        t2.fixtures.cleanup();
      }
    });

    test('stop() with transfers in progress', async () => {
      const t2 = await startTftp({ timeoutMs: 200, retries: 1 });
      const c = await RawClient.open(t2);
      try {
        await c.send(packet.rrq('big.bin', { tsize: '0' }));
        await c.expect();
        await c.send(packet.rrq('ten-blocks.bin'));
        await c.expect();
        const base = t2.fixtures.base;
        await t2.server.stop();
        await waitFor(() => openFixtureFiles(t2).length === 0, 1000);
        assert.deepEqual(openFixtureFiles(t2), [], `files under ${base} still open after stop()`);
      } finally {
        c.close();
        t2.fixtures.cleanup();
      }
    });
  });
});
