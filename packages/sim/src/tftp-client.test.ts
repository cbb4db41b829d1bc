import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { directoryResolver } from '@muster/server/boot/tftp/directory.ts';
import { TftpServer } from '@muster/server/boot/tftp/server.ts';
import { tftpGet } from './tftp-client.ts';
import { ackPacket, decodeServerPacket, errorPacket } from './tftp-packet.ts';

function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const files: Record<string, Buffer> = {
  'big.bin': bytes(700_000, 1),
  'exact.bin': bytes(1468 * 3, 2),
  'small.txt': Buffer.from('kernel=kernel8.img\n'),
  'empty.bin': Buffer.alloc(0),
  // With blksize 8: 65,545 blocks, so block numbers pass 65535.
  'rollover.bin': bytes(65536 * 8 + 70, 3),
  'a1b2c3d4/config.txt': Buffer.from('[all]\n'),
};

describe('tftpGet against muster TftpServer', () => {
  let root: string;
  let server: TftpServer;
  let port: number;
  const host = '127.0.0.1';

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'muster-sim-tftp-'));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(root, name, '..'), { recursive: true });
      writeFileSync(join(root, name), content);
    }
    server = new TftpServer({ host, port: 0, resolve: directoryResolver(root) });
    port = (await server.start()).port;
  });

  after(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('a file arrives whole with blksize 1468 and tsize, and the OACK answers first', async () => {
    const result = await tftpGet({ host, port, filename: 'big.bin', blksize: 1468, tsize: true, hash: true });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.deepEqual(
      { firstReply: result.firstReply, oack: result.oack, tsize: result.tsize, bytes: result.bytes, sha256: result.sha256 },
      {
        firstReply: 'oack',
        oack: { tsize: '700000', blksize: '1468' },
        tsize: 700_000,
        bytes: 700_000,
        sha256: sha256(files['big.bin']),
      },
    );
    assert.equal(result.blocks, Math.floor(700_000 / 1468) + 1);
  });

  test('a file that is a whole number of blocks ends with an empty block', async () => {
    const result = await tftpGet({ host, port, filename: 'exact.bin', blksize: 1468, keep: true });
    assert.equal(result.ok, true);
    assert.equal(result.blocks, 4);
    assert.deepEqual(result.data, files['exact.bin']);
  });

  test('windowsize 8 (RFC 7440) delivers the same bytes', async () => {
    const result = await tftpGet({ host, port, filename: 'big.bin', blksize: 1024, windowsize: 8, hash: true });
    assert.equal(result.ok, true);
    assert.equal(result.oack?.windowsize, '8');
    assert.equal(result.sha256, sha256(files['big.bin']));
  });

  test('without options the first reply is DATA in 512-byte blocks', async () => {
    const result = await tftpGet({ host, port, filename: 'small.txt', keep: true });
    assert.deepEqual(
      { ok: result.ok, firstReply: result.firstReply, oack: result.oack, data: result.data?.toString() },
      { ok: true, firstReply: 'data', oack: null, data: 'kernel=kernel8.img\n' },
    );
  });

  test('an empty file arrives as one empty block', async () => {
    const result = await tftpGet({ host, port, filename: 'empty.bin', tsize: true, blksize: 1468 });
    assert.deepEqual(
      { ok: result.ok, bytes: result.bytes, tsize: result.tsize, blocks: result.blocks },
      { ok: true, bytes: 0, tsize: 0, blocks: 1 },
    );
  });

  test('block numbers roll over past 65535', async () => {
    const result = await tftpGet({ host, port, filename: 'rollover.bin', blksize: 8, windowsize: 16, hash: true, fileTimeoutMs: 60_000 });
    assert.equal(result.ok, true, JSON.stringify(result.error));
    assert.equal(result.blocks, 65536 + 8 + 1, '65,544 full blocks and one short one');
    assert.equal(result.sha256, sha256(files['rollover.bin']));
  });

  test('a missing file is the server ERROR 1, answered first', async () => {
    const result = await tftpGet({ host, port, filename: 'nope.bin', tsize: true, blksize: 1468 });
    assert.deepEqual(
      { ok: result.ok, firstReply: result.firstReply, error: result.error },
      { ok: false, firstReply: 'error', error: { from: 'server', code: 1, message: 'File not found' } },
    );
  });

  test('the Pi 5 spelling with a doubled slash reaches the file', async () => {
    const result = await tftpGet({ host, port, filename: 'a1b2c3d4//config.txt', tsize: true, blksize: 1468, keep: true });
    assert.equal(result.data?.toString(), '[all]\n');
  });

  test('an existence probe ends after the first DATA block with an ERROR, and the server lets go', async () => {
    const result = await tftpGet({ host, port, filename: 'big.bin', tsize: true, blksize: 1468, abort: 'first-block' });
    assert.deepEqual(
      { ok: result.ok, aborted: result.aborted, blocks: result.blocks, bytes: result.bytes, tsize: result.tsize },
      { ok: true, aborted: true, blocks: 1, bytes: 1468, tsize: 700_000 },
    );
    assert.equal(await until(() => server.activeTransfers === 0), true, 'the server ended the transfer');
  });

  test('a size probe ends right after the OACK', async () => {
    const result = await tftpGet({ host, port, filename: 'big.bin', tsize: true, blksize: 1024, abort: 'oack' });
    assert.deepEqual(
      { ok: result.ok, aborted: result.aborted, blocks: result.blocks, tsize: result.tsize },
      { ok: true, aborted: true, blocks: 0, tsize: 700_000 },
    );
    assert.equal(await until(() => server.activeTransfers === 0), true);
  });

  test('bad option values are refused before anything is sent', async () => {
    await assert.rejects(tftpGet({ host, port, filename: 'x', blksize: 4 }), /blksize must be a whole number from 8 to 65464/);
    await assert.rejects(tftpGet({ host, port, filename: 'x', windowsize: 0 }), /windowsize/);
  });
});

async function until(condition: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return condition();
}

/** A UDP peer that follows a script, for behaviour a correct server never shows (lost packets, strangers). */
class ScriptedPeer {
  readonly socket: Socket;
  readonly received: { raw: Buffer; remote: RemoteInfo }[] = [];
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (raw, remote) => {
      this.received.push({ raw, remote });
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async open(): Promise<ScriptedPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new ScriptedPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  async next(index: number, ms = 5000): Promise<{ raw: Buffer; remote: RemoteInfo }> {
    const end = Date.now() + ms;
    while (this.received.length <= index) {
      if (Date.now() > end) throw new Error(`packet ${index} did not arrive within ${ms} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received[index];
  }

  send(data: Buffer, remote: RemoteInfo): void {
    this.socket.send(data, remote.port, remote.address);
  }

  close(): void {
    this.socket.close();
  }
}

function dataPacket(block: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(3, 0);
  header.writeUInt16BE(block, 2);
  return Buffer.concat([header, payload]);
}

describe('tftpGet against a scripted peer', () => {
  test('when an ACK is lost the client sends it again after its retransmission interval', async () => {
    const peer = await ScriptedPeer.open();
    try {
      const done = tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f', retransmitMs: 100, keep: true });
      const rrq = await peer.next(0);
      peer.send(dataPacket(1, Buffer.alloc(512, 1)), rrq.remote);
      const ack = await peer.next(1);
      const again = await peer.next(2);
      assert.deepEqual(ack.raw, ackPacket(1));
      assert.deepEqual(again.raw, ackPacket(1), 'the same ACK, sent again because nothing came');
      peer.send(dataPacket(2, Buffer.from('end')), rrq.remote);
      const result = await done;
      assert.equal(result.ok, true);
      assert.ok(result.retransmits >= 1);
      assert.equal(result.data?.length, 515);
    } finally {
      peer.close();
    }
  });

  test('an unanswered request is sent again, then given up at the file timeout', async () => {
    const peer = await ScriptedPeer.open();
    try {
      const result = await tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f', retransmitMs: 50, fileTimeoutMs: 400 });
      assert.deepEqual(
        { ok: result.ok, firstReply: result.firstReply, error: result.error },
        { ok: false, firstReply: null, error: { from: 'client', code: null, message: 'no whole file within 400 ms' } },
      );
      assert.ok(peer.received.length >= 2, 'the request went out more than once');
      assert.ok(
        peer.received.every(({ raw }) => raw.readUInt16BE(0) === 1),
        'only read requests',
      );
    } finally {
      peer.close();
    }
  });

  test('a packet from another port gets ERROR 5 and the transfer goes on', async () => {
    const peer = await ScriptedPeer.open();
    const stranger = await ScriptedPeer.open();
    try {
      const done = tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f', keep: true });
      const rrq = await peer.next(0);
      peer.send(dataPacket(1, Buffer.alloc(512, 7)), rrq.remote);
      await peer.next(1);
      stranger.send(dataPacket(2, Buffer.from('intruder')), rrq.remote);
      const refused = await stranger.next(0);
      assert.deepEqual(decodeServerPacket(refused.raw), { op: 'error', code: 5, message: 'Unknown transfer ID' });
      peer.send(dataPacket(2, Buffer.from('ok')), rrq.remote);
      const result = await done;
      assert.equal(result.ok, true);
      assert.deepEqual(result.data, Buffer.concat([Buffer.alloc(512, 7), Buffer.from('ok')]));
    } finally {
      peer.close();
      stranger.close();
    }
  });

  test('an OACK naming an option that was not asked for is refused with ERROR 8', async () => {
    const peer = await ScriptedPeer.open();
    try {
      const done = tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f', blksize: 1024 });
      const rrq = await peer.next(0);
      peer.send(Buffer.concat([Buffer.from([0, 6]), Buffer.from('blksize\x001024\x00multicast\x00x\x00', 'latin1')]), rrq.remote);
      const result = await done;
      assert.deepEqual(result.error, { from: 'client', code: null, message: 'OACK names option multicast, which was not requested' });
      const refusal = await peer.next(1);
      assert.deepEqual(decodeServerPacket(refusal.raw), {
        op: 'error',
        code: 8,
        message: 'OACK names option multicast, which was not requested',
      });
    } finally {
      peer.close();
    }
  });

  test('fewer bytes than the announced tsize is a failure', async () => {
    const peer = await ScriptedPeer.open();
    try {
      const done = tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f', tsize: true, blksize: 512 });
      const rrq = await peer.next(0);
      peer.send(Buffer.concat([Buffer.from([0, 6]), Buffer.from('tsize\x001000\x00blksize\x00512\x00', 'latin1')]), rrq.remote);
      assert.deepEqual((await peer.next(1)).raw, ackPacket(0));
      peer.send(dataPacket(1, Buffer.alloc(100)), rrq.remote);
      const result = await done;
      assert.deepEqual(result.error, { from: 'client', code: null, message: 'received 100 bytes, the server announced 1000' });
    } finally {
      peer.close();
    }
  });

  test('an ERROR from the server ends the transfer with its code and message', async () => {
    const peer = await ScriptedPeer.open();
    try {
      const done = tftpGet({ host: '127.0.0.1', port: peer.port, filename: 'f' });
      const rrq = await peer.next(0);
      peer.send(errorPacket(0, 'Server busy; try again later'), rrq.remote);
      const result = await done;
      assert.deepEqual(result.error, { from: 'server', code: 0, message: 'Server busy; try again later' });
      assert.equal(result.firstReply, 'error');
    } finally {
      peer.close();
    }
  });
});
