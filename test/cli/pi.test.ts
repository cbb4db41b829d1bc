import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { tftpGet } from '../boot/support.ts';
import { eachDatabase, type Harness } from '../support/harness.ts';
import { runCli, tempDir } from './cli-process.ts';

function cli(h: Harness, args: string[], input?: string) {
  const server = `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`;
  return runCli(['--server', server, '--token', h.admin, ...args], { input });
}

function bootDir(): string {
  const dir = tempDir('muster-pi-tree-');
  mkdirSync(join(dir, 'overlays'));
  writeFileSync(join(dir, 'start4.elf'), Buffer.alloc(50_000, 3));
  writeFileSync(join(dir, 'config.txt'), 'arm_64bit=1\n');
  writeFileSync(join(dir, 'overlays', 'overlay_map.dtb'), 'map');
  writeFileSync(join(dir, 'cmdline.txt.liquid'), 'root=/dev/nfs host={{ machine.id }}');
  return dir;
}

eachDatabase(
  'muster pi, rule and boot commands',
  (h) => {
    let dir: string;
    before(() => {
      dir = bootDir();
    });

    test('pi tree add uploads a directory once and serves it to matching serials', async () => {
      const first = await cli(h(), ['pi', 'tree', 'add', 'lab', dir, '--serial-pattern', 'a*']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /4 files, 4 uploaded, 0 already on the server/);
      assert.match(first.stdout, /^NAME\s+FILES\s+TEMPLATES\s+SERIAL PATTERN/);
      assert.match(first.stdout, /\nlab\s+4\s+1\s+a\*\s+0/);
      const again = await cli(h(), ['pi', 'tree', 'add', 'lab', dir, '--serial-pattern', 'a*']);
      assert.match(again.stderr, /4 files, 0 uploaded, 4 already on the server/);
      const shown = await cli(h(), ['--json', 'pi', 'tree', 'show', 'lab']);
      assert.deepEqual(
        JSON.parse(shown.stdout).files.map((f: { path: string; template: boolean }) => [f.path, f.template]),
        [
          ['cmdline.txt', true],
          ['config.txt', false],
          ['overlays/overlay_map.dtb', false],
          ['start4.elf', false],
        ],
      );
      const got = await tftpGet(h().muster.tftpAddress?.port as number, 'a0000001/cmdline.txt');
      assert.match(got.data.toString(), /^root=\/dev\/nfs host=m_/);
    });

    test('pi show tells what an unseen serial will get, without creating it', async () => {
      const plan = await cli(h(), ['pi', 'show', 'a0000099']);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /tree:\s+lab \(unseen; rule lab\)/);
      assert.match(plan.stdout, /cmdline.txt\s+\d+\s+[0-9a-f]{16}\s+yes/);
      const file = await cli(h(), ['pi', 'show', 'a0000099', '--file', 'cmdline.txt']);
      assert.equal(file.stdout, 'root=/dev/nfs host=\n');
      assert.equal((await h().request('GET', '/api/v1/machines/serial:a0000099')).status, 404);
    });

    test('pi provision, pi ls and pi ls --count', async () => {
      const made = await cli(h(), ['pi', 'provision', 'B0000001', '--tree', 'lab']);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /^provisioned b0000001 as m_\w+, tree lab\n$/);
      assert.match((await cli(h(), ['pi', 'provision', 'b0000001'])).stdout, /^already known: b0000001/);
      const count = await cli(h(), ['pi', 'ls', '--count']);
      assert.equal(count.stdout, '2\n');
      const list = await cli(h(), ['pi', 'ls']);
      assert.match(list.stdout, /a0000001\s+m_\w+\s+-\s+discovered\s+lab/);
      assert.match(list.stdout, /b0000001\s+m_\w+\s+-\s+discovered\s+lab/);
    });

    test('pi provision with a Pi 4’s 16-digit serial stores the 8 digits the Pi asks with over TFTP', async () => {
      const made = await cli(h(), ['--json', 'pi', 'provision', '10000000A0DCA632', '--tree', 'lab']);
      assert.equal(made.code, 0, made.stderr);
      const { machine } = JSON.parse(made.stdout);
      assert.equal(machine.serial, 'a0dca632');
      const got = await tftpGet(h().muster.tftpAddress?.port as number, 'a0dca632/cmdline.txt');
      assert.equal(got.data.toString(), `root=/dev/nfs host=${machine.machine_id}`);
      const shown = await cli(h(), ['--json', 'pi', 'show', '10000000a0dca632']);
      assert.deepEqual([JSON.parse(shown.stdout).serial, JSON.parse(shown.stdout).machine_id], ['a0dca632', machine.machine_id]);
      const notPi = await cli(h(), ['pi', 'provision', 'AZJN042']);
      assert.equal(notPi.code, 2, notPi.stderr);
      assert.match(notPi.stderr, /expected a Pi serial: 8 hex digits as in its TFTP path, or all 16/);
      assert.equal((await h().request('GET', '/api/v1/machines/serial:AZJN042')).status, 404);
    });

    test('rule set, ls, show and rm', async () => {
      const set = await cli(h(), [
        'rule',
        'set',
        'quarantine',
        '--door',
        'pi',
        '--serial',
        'dead*',
        '--action',
        'refuse',
        '--priority',
        '5',
      ]);
      assert.equal(set.code, 0, set.stderr);
      const list = await cli(h(), ['rule', 'ls']);
      assert.match(
        list.stdout,
        /^NAME\s+PRIORITY.*\nquarantine\s+5\s+pi\s+serial=dead\*\s+refuse\s+-\s+-\s+-\nlab\s+100\s+pi\s+serial=a\*\s+discover\s+-\s+-\s+lab\n$/,
      );
      assert.equal((await cli(h(), ['rule', 'rm', 'quarantine'])).code, 0);
      assert.equal((await cli(h(), ['rule', 'show', 'quarantine'])).code, 3);
    });

    test('boot sessions and boot session show a machine’s timeline', async () => {
      const port = h().muster.tftpAddress?.port as number;
      await tftpGet(port, 'a0000002/config.txt');
      await tftpGet(port, 'a0000002/nothing-here');
      let sessions = await cli(h(), ['--json', 'boot', 'sessions', 'serial:a0000002']);
      for (let i = 0; i < 100 && JSON.parse(sessions.stdout)[0]?.requests !== 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        sessions = await cli(h(), ['--json', 'boot', 'sessions', 'serial:a0000002']);
      }
      const [session] = JSON.parse(sessions.stdout);
      const shown = await cli(h(), ['boot', 'session', session.id]);
      assert.match(shown.stdout, /requests:\s+2 \(1 failed\), 12 bytes/);
      assert.match(shown.stdout, /pi\s+a0000002\/config.txt\s+ok\s+12/);
      assert.match(shown.stdout, /pi\s+a0000002\/nothing-here\s+not_found\s+0/);
      // The same request again in a row is one line with its count.
      await tftpGet(port, 'a0000002/nothing-here');
      let again = await cli(h(), ['boot', 'session', session.id]);
      for (let i = 0; i < 100 && !/requests:\s+3 /.test(again.stdout); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        again = await cli(h(), ['boot', 'session', session.id]);
      }
      assert.match(again.stdout, /pi\s+a0000002\/nothing-here\s+not_found\s+0\s+\d+\s+File not found\s+2\n/);
      assert.equal(again.stdout.match(/nothing-here/g)?.length, 1);
    });

    test('boot script set, show and reset', async () => {
      const set = await cli(h(), ['boot', 'script', 'set', 'ready', '-'], '#!ipxe\necho installing {{ machine.id }}\n');
      assert.equal(set.code, 0, set.stderr);
      assert.equal((await cli(h(), ['boot', 'script', 'show', 'ready'])).stdout, '#!ipxe\necho installing {{ machine.id }}\n');
      assert.match((await cli(h(), ['boot', 'script', 'reset', 'ready'])).stdout, /no ready script is set/);
    });

    test('bad input: a message and a non-zero exit, nothing changed', async () => {
      const missing = await cli(h(), ['pi', 'tree', 'add', 'x', join(dir, 'nope')]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /no such directory/);
      const badSerial = await cli(h(), ['pi', 'provision', 'not-a-serial']);
      assert.equal(badSerial.code, 2);
      const noTree = await cli(h(), ['pi', 'provision', 'c0000001']);
      assert.equal(noTree.code, 3);
      assert.match(noTree.stderr, /No rule gives serial c0000001 a Pi tree/);
      assert.equal((await cli(h(), ['rule', 'set', 'x', '--action', 'explode'])).code, 2);
      assert.equal((await cli(h(), ['rule', 'set', 'x', '--action', 'refuse', '--priority', '-1'])).code, 2);
      assert.equal((await cli(h(), ['boot', 'script', 'set', 'other', '-'], '#!ipxe\n')).code, 2);
      assert.equal((await cli(h(), ['boot', 'script', 'set', 'ready', '-'], 'no shebang')).code, 2);
      assert.equal((await cli(h(), ['pi', 'tree', 'rm', 'lab'])).code, 4);
      assert.equal((await cli(h(), ['--json', 'pi', 'tree', 'ls'])).stdout.includes('"lab"'), true);
    });
  },
  { env: { MUSTER_TFTP_LISTEN: '127.0.0.1:0' } },
);
