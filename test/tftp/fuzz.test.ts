import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  curlGet,
  fixtureFiles,
  listTree,
  RawClient,
  type RunningTftp,
  rawGet,
  run,
  sha256,
  startTftp,
  tftpHpaGet,
  waitFor,
} from './support.ts';

const DATAGRAMS = 100_000;
const TIME_BOUND_MS = 30_000;
const SEED = 0xf022;
const sender = join(import.meta.dirname, 'fuzz-sender.ts');

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What this process's file descriptors point at: served files (under the fixtures) and sockets. */
function descriptors(t: RunningTftp): { files: string[]; sockets: number } {
  const files: string[] = [];
  let sockets = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(t.fixtures.base)) files.push(target.slice(t.fixtures.base.length));
      else if (target.startsWith('socket:')) sockets++;
    } catch {}
  }
  return { files: files.sort(), sockets };
}

describe('TFTP server under 100,000 random and mutated datagrams', () => {
  let t: RunningTftp;
  let outDir: string;
  let rootBefore: string[];
  let rssBefore = 0;
  let socketsBefore = 0;
  let peakTransfers = 0;

  before(async () => {
    // Short timeouts so abandoned transfers die quickly (200 ms + 400 ms); limits low enough that
    // "server busy" is exercised too.
    t = await startTftp({ timeoutMs: 200, retries: 1, maxTransfers: 300, maxPerClient: 200 });
    outDir = mkdtempSync(join(tmpdir(), 'muster-tftp-fuzz-'));
    rootBefore = listTree(t.fixtures.root);
    // Warm up (code compiled, buffers allocated) before measuring memory.
    const c = await RawClient.open(t);
    for (let i = 0; i < 3; i++) await rawGet(c, 'big.bin', { blksize: '1468', windowsize: '8' });
    c.close();
    await waitFor(() => t.server.activeTransfers === 0, 1000);
    gc();
    rssBefore = process.memoryUsage().rss;
    socketsBefore = descriptors(t).sockets;
  });

  after(async () => {
    await t?.stop();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  test('100,000 datagrams from 4 sockets, to the listening port and to transfer ports, do not crash the server', async () => {
    const sampler = setInterval(() => {
      peakTransfers = Math.max(peakTransfers, t.server.activeTransfers);
    }, 10);
    try {
      const result = await run(
        process.execPath,
        [sender, String(t.port), String(SEED), String(DATAGRAMS), String(TIME_BOUND_MS)],
        TIME_BOUND_MS + 15_000,
      );
      assert.equal(result.code, 0, result.output);
      const summary = JSON.parse(result.stdout) as { sent: number; elapsedMs: number; replies: number; replyKinds: Record<string, number> };
      console.log(`fuzz: ${JSON.stringify(summary)}, peak activeTransfers ${peakTransfers}`);
      assert.ok(summary.sent >= DATAGRAMS / 2, `only ${summary.sent} datagrams sent in ${TIME_BOUND_MS} ms`);
      assert.ok(summary.replies > 0, 'the server answered nothing');
    } finally {
      clearInterval(sampler);
    }
  });

  test('abandoned transfers drain within the retransmission window: activeTransfers, open files and transfer sockets', async () => {
    // timeoutMs 200, retries 1: an abandoned transfer waits 200 + 400 ms; the fuzzer asks for no valid timeout.
    const drained = await waitFor(() => t.server.activeTransfers === 0, 3000);
    assert.ok(drained, `${t.server.activeTransfers} transfers still active 3 s after the fuzz`);
    // activeTransfers must tell the truth: once it is 0, no served file is open and no transfer socket is bound.
    await waitFor(() => {
      const d = descriptors(t);
      return d.files.length === 0 && d.sockets <= socketsBefore;
    }, 300);
    const d = descriptors(t);
    assert.deepEqual(d.files, [], 'served files still open while activeTransfers is 0');
    assert.ok(d.sockets <= socketsBefore, `${d.sockets - socketsBefore} transfer sockets still open while activeTransfers is 0`);
  });

  test('afterwards real clients (curl, tftp-hpa) and a raw client are served correctly', async () => {
    const out = join(outDir, 'big.bin');
    const result = await curlGet(t.host, t.port, 'big.bin', out, ['--tftp-blksize', '1468']);
    assert.equal(result.code, 0, result.output);
    assert.equal(sha256(readFileSync(out)), sha256(fixtureFiles['big.bin']));
    const out2 = join(outDir, 'config.txt');
    const hpa = await tftpHpaGet(t.host, t.port, 'aa112233//config.txt', out2);
    assert.equal(hpa.code, 0, hpa.output);
    assert.deepEqual(readFileSync(out2), fixtureFiles['aa112233/config.txt'], hpa.output);
    const c = await RawClient.open(t);
    try {
      const r = await rawGet(c, 'exact1024.bin', { tsize: '0' });
      assert.deepEqual(r.content, fixtureFiles['exact1024.bin']);
    } finally {
      c.close();
    }
  });

  test('nothing was written under the root', () => {
    assert.deepEqual(listTree(t.fixtures.root), rootBefore);
  });

  test('memory (RSS) grows by less than 50 MB, and no file or socket stays open', async () => {
    await waitFor(() => t.server.activeTransfers === 0 && descriptors(t).files.length === 0, 3000);
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    const memory = process.memoryUsage();
    const growth = memory.rss - rssBefore;
    console.log(`fuzz: RSS growth ${(growth / 1e6).toFixed(1)} MB (heap used ${(memory.heapUsed / 1e6).toFixed(1)} MB)`);
    assert.ok(growth < 50e6, `RSS grew by ${(growth / 1e6).toFixed(1)} MB`);
    const d = descriptors(t);
    assert.deepEqual(d.files, [], 'served files still open 3 s after the fuzz');
    assert.ok(d.sockets <= socketsBefore, `${d.sockets - socketsBefore} sockets more than before the fuzz`);
  });
});
