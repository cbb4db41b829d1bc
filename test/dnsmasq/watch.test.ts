import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  truncateSync,
  watch,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { treeFiles } from '../boot/support.ts';
import { tempDir } from '../cli/cli-process.ts';
import { eachDatabase } from '../support/harness.ts';
import { missingToolMessage } from '../tools/list.ts';
import { runDnsmasqCli, startDnsmasqCli } from './cli.ts';

const firmware = Buffer.from('start4.elf firmware bytes '.repeat(4000));
const config = '[all]\narm_64bit=1\nkernel=kernel8.img\n';
const cmdline = 'console=serial0,115200 root=/dev/nfs muster.machine={{ machine.id }} serial={{ serial }} tree={{ tree }}';

const notFound = (root: string, serial: string, file = 'start4.elf') =>
  `Nov 23 18:43:00 dnsmasq-tftp[812]: file ${root}/${serial}/${file} not found for 192.168.1.50\n`;

/** Resolves with the time `name` appears in `dir` (inotify), or fails after 20 s. */
function appearance(dir: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dir, (_event, file) => {
      if (file !== name || !existsSync(join(dir, name))) return;
      watcher.close();
      clearTimeout(timer);
      resolve(performance.now());
    });
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`${name} did not appear in ${dir}`));
    }, 20_000);
  });
}

/** The JSON lines a running `muster dnsmasq watch --json` printed, and a way to wait for one. */
function jsonEvents(child: ChildProcess) {
  // biome-ignore lint/suspicious/noExplicitAny: events of every shape
  const events: any[] = [];
  let buffer = '';
  const waiting: { match: (e: Record<string, unknown>) => boolean; resolve: (e: unknown) => void }[] = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let newline = buffer.indexOf('\n'); newline !== -1; newline = buffer.indexOf('\n')) {
      const event = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      events.push(event);
      for (const w of waiting.filter((w) => w.match(event))) w.resolve(event);
    }
  });
  const next = (match: (e: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = events.find(match);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`no such event in ${JSON.stringify(events)}`)), 20_000);
      waiting.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as Record<string, unknown>);
        },
      });
    });
  return { events, next };
}

function lines(stream: NodeJS.ReadableStream | null, into: string[]): void {
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => into.push(...chunk.split('\n').filter((l) => l !== '')));
}

eachDatabase(
  'muster dnsmasq watch against a muster server',
  (h) => {
    const work = tempDir('muster-dnsmasq-watch-');
    const root = join(work, 'tftp');
    const log = join(work, 'dnsmasq.log');
    const stderr: string[] = [];
    let server: string;
    let token: string;
    let watcher: ReturnType<typeof startDnsmasqCli>;
    let events: ReturnType<typeof jsonEvents>;

    before(async () => {
      const files = await treeFiles(h(), {
        'start4.elf': firmware,
        'fixup4.dat': 'fixup4',
        'config.txt': config,
        'overlays/vc4-kms-v3d.dtbo': 'overlay',
        'cmdline.txt.liquid': cmdline,
      });
      const put = await h().request('PUT', '/api/v1/pi/trees/lab', { body: { files, serial_pattern: 'a1*' } });
      assert.equal(put.status, 200, put.text);
      const refuse = await h().request('PUT', '/api/v1/rules/quarantine', {
        body: { door: 'pi', serial_pattern: 'dead*', action: 'refuse' },
      });
      assert.equal(refuse.status, 200, refuse.text);
      const { port } = h().muster.app.server.address() as AddressInfo;
      server = `http://127.0.0.1:${port}`;
      token = await h().userToken('operator');
      execFileSync('mkdir', ['-p', root]);
      writeFileSync(log, 'Nov 23 18:42:59 dnsmasq[812]: started, version 2.90 DNS disabled\n');
      watcher = startDnsmasqCli(['watch', '--json', '--log', log, '--tftp-root', root], {
        env: { MUSTER_SERVER: server, MUSTER_TOKEN: token },
      });
      events = jsonEvents(watcher);
      lines(watcher.stderr, stderr);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`watch did not start: ${stderr.join('\n')}`)), 20_000);
        watcher.stderr.on('data', () => {
          // Following, and the cache filled with the trees' shared files.
          if (stderr.some((l) => l.startsWith('following ')) && stderr.some((l) => l.startsWith('cache: '))) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    });

    after(async () => {
      if (watcher.exitCode !== null) return;
      const exited = new Promise<number | null>((resolve) => watcher.on('exit', (code) => resolve(code)));
      watcher.kill('SIGTERM');
      assert.equal(await exited, 0, 'SIGTERM stops the watch cleanly');
    });

    test('a log line for an unseen serial gets its directory: the tree, and cmdline.txt rendered for its machine', async (t) => {
      const latencies: number[] = [];
      for (let i = 1; i <= 9; i++) {
        const serial = `a100000${i}`;
        const appeared = appearance(root, serial);
        const written = performance.now();
        appendFileSync(log, notFound(root, serial));
        latencies.push((await appeared) - written);
      }
      latencies.sort((a, b) => a - b);
      t.diagnostic(
        `log line → directory through muster's API (${h().kind}): median ${latencies[4].toFixed(1)} ms of 9, max ${latencies[8].toFixed(1)} ms`,
      );

      const dir = join(root, 'a1000001');
      assert.deepEqual(readdirSync(dir, { recursive: true }).sort(), [
        'cmdline.txt',
        'config.txt',
        'fixup4.dat',
        'overlays',
        'overlays/vc4-kms-v3d.dtbo',
        'start4.elf',
      ]);
      assert.deepEqual(readFileSync(join(dir, 'start4.elf')), firmware);
      assert.equal(readFileSync(join(dir, 'config.txt'), 'utf8'), config);
      const machine = (await h().request('GET', '/api/v1/machines/serial:a1000001')).body;
      assert.equal(machine.state, 'discovered');
      assert.equal(
        readFileSync(join(dir, 'cmdline.txt'), 'utf8'),
        `console=serial0,115200 root=/dev/nfs muster.machine=${machine.id} serial=a1000001 tree=lab`,
      );
      const other = (await h().request('GET', '/api/v1/machines/serial:a1000002')).body;
      assert.match(readFileSync(join(root, 'a1000002', 'cmdline.txt'), 'utf8'), new RegExp(`muster.machine=${other.id} serial=a1000002 `));

      const event = await events.next((e) => e.event === 'materialised' && e.serial === 'a1000001');
      assert.deepEqual(
        { ...event, at: undefined, ms: undefined },
        {
          at: undefined,
          ms: undefined,
          event: 'materialised',
          serial: 'a1000001',
          machine_id: machine.id,
          tree: 'lab',
          machine_created: true,
          files: 5,
          rendered: 1,
          cached: 4,
          fetched: 0,
          bytes_fetched: 0,
        },
        'the shared files were fetched at start: even the first serial only waits for its cmdline.txt',
      );
      assert.ok(stderr.includes('cache: 4 shared files (102 KiB) fetched for 1 Pi tree'), stderr.join('\n'));
    });

    test('a serial a rule refuses gets no directory, and one error line', async () => {
      appendFileSync(log, notFound(root, 'deadbeef') + notFound(root, 'deadbeef', 'start.elf'));
      const refused = await events.next((e) => e.event === 'refused');
      assert.deepEqual(
        { ...refused, at: undefined },
        {
          at: undefined,
          event: 'refused',
          serial: 'deadbeef',
          code: 'boot_refused',
          message: 'Rule quarantine refuses serial deadbeef',
          retry_in_ms: 60_000,
        },
      );
      const marker = appearance(root, 'a10000ff');
      appendFileSync(log, notFound(root, 'a10000ff'));
      await marker;
      assert.equal(existsSync(join(root, 'deadbeef')), false);
      assert.equal(events.events.filter((e) => e.event === 'refused').length, 1);
      const machine = await h().request('GET', '/api/v1/machines/serial:deadbeef');
      assert.equal(machine.status, 404);
    });

    test('the log is followed across rotation by rename and by copytruncate', async () => {
      renameSync(log, `${log}.1`);
      writeFileSync(log, '');
      const renamed = appearance(root, 'a1000101');
      appendFileSync(log, notFound(root, 'a1000101'));
      await renamed;

      copyFileSync(log, `${log}.2`);
      truncateSync(log, 0);
      const truncated = appearance(root, 'a1000102');
      appendFileSync(log, notFound(root, 'a1000102', 'config.txt'));
      await truncated;
    });

    test('with a real dnsmasq serving TFTP: a Pi that missed its files finds them on its next request', async (t) => {
      const address = `127.0.${10 + Math.floor(Math.random() * 200)}.${10 + Math.floor(Math.random() * 200)}`;
      // dnsmasq binds the DHCP port. In CI it must be free, and the test fails loudly if it is not; elsewhere a
      // machine running its own DHCP server skips this one test with the reason.
      if (execFileSync('ss', ['-uanH', 'sport = :67']).toString().trim() !== '') {
        if (process.env.CI === 'true') assert.fail('UDP port 67 is in use, so dnsmasq cannot start for this test');
        return t.skip('UDP port 67 is in use on this machine');
      }
      const generated = await runDnsmasqCli([
        'config',
        '--subnet',
        '127.0.0.0/8',
        '--muster-host',
        '127.0.0.1',
        '--tftp-local',
        root,
        '--log-file',
        log,
      ]);
      assert.equal(generated.code, 0, generated.stderr);
      const conf = join(work, 'muster.conf');
      writeFileSync(conf, generated.stdout);
      // Only on this loopback address: TFTP is bound to it alone; DHCP answers nothing outside it.
      const dnsmasq = spawn(
        '/usr/sbin/dnsmasq',
        [
          `--conf-file=${conf}`,
          '--keep-in-foreground',
          `--listen-address=${address}`,
          '--bind-interfaces',
          `--pid-file=${join(work, 'dnsmasq.pid')}`,
          '--user=root',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const dnsmasqErrors: string[] = [];
      dnsmasq.on('error', (error) => dnsmasqErrors.push(`${missingToolMessage('dnsmasq', 'cannot run')} (${error.message})`));
      lines(dnsmasq.stderr, dnsmasqErrors);
      t.after(() => {
        if (dnsmasq.exitCode === null) dnsmasq.kill('SIGTERM');
      });
      // Started once it has logged its TFTP root; gone if it exits first (e.g. port 69 taken on that address).
      const started = await new Promise<boolean>((resolve) => {
        const finish = (ok: boolean) => {
          clearTimeout(timer);
          logWatcher.close();
          resolve(ok);
        };
        const timer = setTimeout(() => finish(false), 20_000);
        const look = () => readFileSync(log, 'utf8').includes(`TFTP root is ${root}`) && finish(true);
        const logWatcher = watch(log, look);
        dnsmasq.on('exit', () => finish(false));
        dnsmasq.on('error', () => finish(false));
        look();
      });
      assert.ok(started, `dnsmasq did not start: ${dnsmasqErrors.join(' ')}`);

      const appeared = appearance(root, 'a1000201');
      const first = await tftpGet(address, 'a1000201/start4.elf');
      assert.notEqual(first.code, 0, 'the first request finds nothing');
      await appeared;
      const second = await tftpGet(address, 'a1000201/start4.elf');
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(second.data, firmware);
      const pi5 = await tftpGet(address, 'a1000201//config.txt');
      assert.equal(pi5.data.toString(), config);
      assert.match(readFileSync(log, 'utf8'), new RegExp(`dnsmasq-tftp\\[\\d+\\]: sent ${root}/a1000201/start4.elf to 127\\.0\\.0\\.1`));
    });
  },
  { env: { MUSTER_TFTP_LISTEN: 'off' } },
);

/** A TFTP read with curl, as a bootloader would (blksize 1468). */
function tftpGet(host: string, path: string): Promise<{ code: number; data: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-s', '-S', '--max-time', '20', '--tftp-blksize', '1468', '-o', '-', `tftp://${host}/${path}`],
      { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, data: stdout, stderr: stderr.toString() }),
    );
  });
}
