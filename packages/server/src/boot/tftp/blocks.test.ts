import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BlockCache, type BlockReader, bytesReader, chunkBytes, fileReader } from './blocks.ts';

const bytes = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff));

/** DATA packet `block` as RFC 1350 lays it out. */
function expected(content: Buffer, blksize: number, block: number): Buffer {
  const header = Buffer.from([0, 3, (block >> 8) & 0xff, block & 0xff]);
  return Buffer.concat([header, content.subarray((block - 1) * blksize, block * blksize)]);
}

/** Loads every block in order, as a transfer does, and returns the packets. */
async function allPackets(cache: BlockCache): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let block = 1; block <= cache.finalBlock; block++) {
    let packet = cache.packet(block);
    if (!packet) {
      await cache.load(block, block);
      packet = cache.packet(block);
    }
    assert.ok(packet, `block ${block} after load`);
    out.push(Buffer.from(packet));
    cache.prefetch(block, block);
  }
  return out;
}

test('DATA packets carry their block number and bytes; a short last block ends the file', async () => {
  const content = bytes(3 * 512 + 100);
  const cache = new BlockCache(bytesReader(content), content.length, 512, () => true);
  assert.equal(cache.finalBlock, 4);
  assert.deepEqual(
    await allPackets(cache),
    [1, 2, 3, 4].map((b) => expected(content, 512, b)),
  );
});

test('a file of whole blocks ends with an empty DATA, and an empty file is one empty DATA 1', async () => {
  const content = bytes(1024);
  assert.deepEqual(
    await allPackets(new BlockCache(bytesReader(content), 1024, 512, () => true)),
    [1, 2, 3].map((b) => expected(content, 512, b)),
  );
  assert.deepEqual(await allPackets(new BlockCache(bytesReader(Buffer.alloc(0)), 0, 512, () => true)), [Buffer.from([0, 3, 0, 1])]);
});

test('a file read through readv across many chunks arrives whole, block numbers wrapping past 65535', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-blocks-'));
  try {
    const content = bytes(65_600 * 8 + 5);
    writeFileSync(join(dir, 'f'), content);
    const reader = fileReader(join(dir, 'f'));
    const cache = new BlockCache(reader, content.length, 8, () => true);
    const packets = await allPackets(cache);
    await cache.close();
    assert.equal(packets.length, 65_601);
    assert.deepEqual(packets[65_535].subarray(0, 4), Buffer.from([0, 3, 0, 0]), 'block 65536 goes out as 0');
    assert.deepEqual(Buffer.concat(packets.map((p) => p.subarray(4))), content);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the next chunk is read ahead while the current one is sent, into the second buffer', async () => {
  const content = bytes(3 * chunkBytes);
  const reads: number[] = [];
  const reader: BlockReader = {
    fill: (offset, payloads) => {
      reads.push(offset);
      return Promise.resolve(bytesReader(content).fill(offset, payloads));
    },
    close: async () => {},
  };
  const cache = new BlockCache(reader, content.length, 1024, () => true);
  await cache.load(1, 1);
  cache.prefetch(1, 1);
  assert.deepEqual(reads, [0, chunkBytes], 'chunk 1 requested once chunk 0 is in use');
  cache.prefetch(2, 1);
  assert.deepEqual(reads, [0, chunkBytes], 'no third buffer while chunk 0 is still needed');
  await cache.load(33, 1);
  assert.deepEqual(cache.packet(33), expected(content, 1024, 33));
  cache.prefetch(33, 33);
  assert.deepEqual(reads, [0, chunkBytes, 2 * chunkBytes], 'chunk 0 done with: its buffer reads chunk 2');
});

test('a buffer a queued send may still read is not overwritten: the next chunk gets a new one', async () => {
  const content = bytes(2 * chunkBytes + 10);
  let reusable = true;
  const cache = new BlockCache(bytesReader(content), content.length, 1024, () => reusable);
  await cache.load(1, 1);
  const first = cache.packet(1);
  await cache.load(33, 33);
  reusable = false;
  await cache.load(65, 65);
  assert.deepEqual(first, expected(content, 1024, 1), 'the packet of block 1 is untouched');
  assert.deepEqual(cache.packet(65), expected(content, 1024, 65));
});

test('a file shorter than its size (it shrank) fails the read instead of sending stale bytes', async () => {
  const content = bytes(2000);
  const cache = new BlockCache(bytesReader(content.subarray(0, 1500)), content.length, 512, () => true);
  await assert.rejects(cache.load(1, 1), /file ended early/);
  assert.equal(cache.packet(1), null);
});
