import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { piTree, StandInTreeSource } from '../../../../test/support/stand-in-tree-source.ts';
import { PiDirectoryMaterialiser } from './materialise.ts';
import { defaultSerialPattern } from './pi-serial.ts';
import { type RetryPolicy, startDnsmasqWatch, type WatchEvent } from './watch.ts';

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const fastRetry: RetryPolicy = { firstMs: 20, maxMs: 80, giveUpMs: 60_000, cooldownMs: 60_000 };

async function setUp(retry: RetryPolicy = fastRetry) {
  const base = mkdtempSync(join(tmpdir(), 'muster-watch-'));
  dirs.push(base);
  const root = join(base, 'tftp');
  const log = join(base, 'dnsmasq.log');
  writeFileSync(log, 'Nov 23 18:42:59 dnsmasq[812]: started, version 2.90 DNS disabled\n');
  const source = new StandInTreeSource(piTree());
  const events: WatchEvent[] = [];
  const listeners: ((event: WatchEvent) => void)[] = [];
  mkdirSync(root);
  const running = await startDnsmasqWatch({
    log,
    materialiser: new PiDirectoryMaterialiser({ root, source }),
    logRoots: ['/srv/tftp', root],
    serialPattern: defaultSerialPattern,
    retry,
    onEvent(event) {
      events.push(event);
      for (const listener of listeners) listener(event);
    },
  });
  closers.push(() => running.close());
  /** Resolves at the first event that passes `match`, or fails after 10 s. */
  const nextEvent = (match: (event: WatchEvent) => boolean) =>
    new Promise<WatchEvent>((resolve, reject) => {
      const seen = events.find(match);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`no such event; got ${JSON.stringify(events)}`)), 10_000);
      listeners.push((event) => {
        if (!match(event)) return;
        clearTimeout(timer);
        resolve(event);
      });
    });
  return { root, log, source, events, nextEvent, running };
}

const notFound = (serial: string, file = 'start4.elf') =>
  `Nov 23 18:43:00 dnsmasq-tftp[812]: file /srv/tftp/${serial}/${file} not found for 192.168.1.50\n`;

/** Resolves when `name` appears in `dir` (inotify, no polling), or fails after 10 s. */
function appearance(dir: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dir, (_event, file) => {
      if (file !== name || !existsSync(join(dir, name))) return;
      const at = performance.now();
      watcher.close();
      clearTimeout(timer);
      resolve(at);
    });
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`${name} did not appear in ${dir}`));
    }, 10_000);
  });
}

describe('dnsmasq watch', () => {
  test('a new serial in a dnsmasq log line gets its directory; time from the line to the directory is reported', async (t) => {
    const { root, log, events, running } = await setUp();
    const latencies: number[] = [];
    for (let i = 1; i <= 15; i++) {
      const serial = (0xa0000000 + i).toString(16);
      const appeared = appearance(root, serial);
      const written = performance.now();
      appendFileSync(log, notFound(serial));
      latencies.push((await appeared) - written);
      assert.equal(readFileSync(join(root, serial, 'cmdline.txt'), 'utf8').includes(`hostname=pi-${serial}`), true);
    }
    latencies.sort((a, b) => a - b);
    t.diagnostic(
      `log line → directory, 15 serials: median ${latencies[7].toFixed(1)} ms, min ${latencies[0].toFixed(1)} ms, max ${latencies[14].toFixed(1)} ms`,
    );
    await running.watch.idle();
    assert.equal(events.filter((e) => e.event === 'materialised').length, 15);
  });

  test('many lines for one serial at once materialise it once', async () => {
    const { root, log, source, nextEvent, running } = await setUp();
    const appeared = appearance(root, 'b0000001');
    let burst = '';
    for (const file of ['start4.elf', 'start.elf', 'config.txt', 'start4.elf']) burst += notFound('b0000001', file).repeat(25);
    appendFileSync(log, burst);
    await appeared;
    await nextEvent((e) => e.event === 'materialised' && e.serial === 'b0000001');
    await running.watch.idle();
    assert.equal(source.calls.provision, 1);
    assert.equal(source.calls.files, 1);
  });

  test('lines for serials that already have a directory, other roots and non-serial names change nothing', async () => {
    const { root, log, source, running } = await setUp();
    mkdirSync(join(root, 'c0000001'));
    appendFileSync(
      log,
      [
        notFound('c0000001'),
        'dnsmasq-tftp[812]: sent /srv/tftp/c0000001/start4.elf to 192.168.1.50\n',
        'dnsmasq-tftp[812]: file /elsewhere/c0000002/start4.elf not found for 192.168.1.50\n',
        'dnsmasq-tftp[812]: file /srv/tftp/pxelinux.cfg/default not found for 192.168.1.51\n',
        'dnsmasq-tftp[812]: error 0 Early terminate received from 192.168.1.50\n',
      ].join(''),
    );
    // A marker serial after them: once it is done, the lines before it were seen.
    const marker = appearance(root, 'c00000ff');
    appendFileSync(log, notFound('c00000ff'));
    await marker;
    await running.watch.idle();
    assert.equal(source.calls.provision, 1);
    assert.deepEqual(readdirSync(root).sort(), ['.muster', 'c0000001', 'c00000ff']);
  });

  test('a serial refused by a rule gets no directory and one refused event until the cooldown ends', async () => {
    const { root, log, source, events, nextEvent, running } = await setUp();
    source.refused.add('d0000001');
    appendFileSync(log, notFound('d0000001'));
    const refused = await nextEvent((e) => e.event === 'refused');
    assert.deepEqual(refused, {
      event: 'refused',
      serial: 'd0000001',
      code: 'boot_refused',
      message: 'rule "lab-only" refuses serial d0000001',
      retry_in_ms: 60_000,
    });
    appendFileSync(log, notFound('d0000001', 'start.elf') + notFound('d0000001', 'config.txt'));
    const marker = appearance(root, 'd00000ff');
    appendFileSync(log, notFound('d00000ff'));
    await marker;
    await running.watch.idle();
    assert.equal(existsSync(join(root, 'd0000001')), false);
    assert.equal(events.filter((e) => e.event === 'refused').length, 1);
    assert.equal(source.calls.provision, 2);
  });

  test('an unreachable server is retried with backoff until it answers', async () => {
    const { root, log, source, events, nextEvent } = await setUp();
    source.unreachable = true;
    appendFileSync(log, notFound('e0000001'));
    await nextEvent((e) => e.event === 'error' && e.retry_in_ms === 40);
    source.unreachable = false;
    const done = await nextEvent((e) => e.event === 'materialised');
    assert.equal(done.event === 'materialised' && done.serial, 'e0000001');
    assert.ok(existsSync(join(root, 'e0000001', 'start4.elf')));
    const retries = events.filter((e) => e.event === 'error').map((e) => (e.event === 'error' ? [e.code, e.retry_in_ms] : null));
    assert.deepEqual(retries.slice(0, 2), [
      ['unavailable', 20],
      ['unavailable', 40],
    ]);
  });

  test('a directory removed by hand is made again at the serial\'s next "not found"', async () => {
    const { root, log, source } = await setUp();
    const first = appearance(root, 'a0000f01');
    appendFileSync(log, notFound('a0000f01'));
    await first;
    rmSync(join(root, 'a0000f01'), { recursive: true });
    const again = appearance(root, 'a0000f01');
    appendFileSync(log, notFound('a0000f01'));
    await again;
    assert.equal(source.calls.provision, 2);
  });

  test('after a rename rotation, lines in the new log are followed', async () => {
    const { root, log } = await setUp();
    const first = appearance(root, 'f0000001');
    appendFileSync(log, notFound('f0000001'));
    await first;
    renameSync(log, `${log}.1`);
    writeFileSync(log, '');
    const second = appearance(root, 'f0000002');
    appendFileSync(log, notFound('f0000002'));
    await second;
  });
});
