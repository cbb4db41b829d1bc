import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { piSerials } from '@muster/sim/pi-serial.ts';
import { writeSampleTree } from '@muster/sim/pi-tree.ts';
import { type BootHttp, bootRoot, startBootHttp, startMusterTftp, type TftpPeer } from './support.ts';

const entry = join(import.meta.dirname, 'sim-cli.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `muster sim …` as its own process (a program holding only `sim`, run the way main.ts runs muster). */
function sim(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('muster sim', () => {
  const { root, cleanup } = bootRoot();
  let tftp: TftpPeer;
  let http: BootHttp;
  const start = 0x5e200001;

  before(async () => {
    // Three Pi 5 serials have a tree; the fourth has none, so its boot fails.
    writeSampleTree(root, {
      model: 'pi5',
      serials: piSerials('pi5', start, 3).map((s) => s.serial),
      kernelBytes: 100_000,
      initramfsBytes: 50_000,
    });
    tftp = await startMusterTftp(root);
    http = await startBootHttp();
  });

  after(async () => {
    await tftp.stop();
    await http.close();
    cleanup();
  });

  // COUNT Pi 5s from serial 5e200001 on; the tree has directories for the first three only.
  const pi5s = (count: number) => [
    'sim',
    'pi',
    '--count',
    String(count),
    '--model',
    'pi5',
    '--tftp-port',
    String(tftp.port),
    '--serial-start',
    '5e200001',
  ];

  test('sim pi prints a summary and exits 0 when every Pi booted', async () => {
    const result = await sim(pi5s(3));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.trimEnd().split('\n');
    assert.deepEqual(
      lines.map((line) => line.split(':')[0]),
      ['model', 'pis', 'succeeded', 'failed', 'first packet answered', 'boot ms', 'bytes', 'requests', 'elapsed ms'],
    );
    assert.match(result.stdout, /^pis: +3$/m);
    assert.match(result.stdout, /^succeeded: +3$/m);
    assert.match(result.stdout, /^failed: +0$/m);
    assert.match(result.stdout, /^first packet answered: +3$/m);
    assert.match(result.stdout, /^boot ms: +median \d+, p95 \d+, max \d+$/m);
  });

  test('sim pi --json prints the summary as JSON and exits 1 when a Pi failed, naming its file', async () => {
    const result = await sim(['--json', ...pi5s(4)]);
    assert.equal(result.code, 1, result.stderr);
    const summary = JSON.parse(result.stdout);
    assert.deepEqual(
      { count: summary.count, succeeded: summary.succeeded, failed: summary.failed, firstPacketAnswered: summary.firstPacketAnswered },
      { count: 4, succeeded: 3, failed: 1, firstPacketAnswered: 3 },
    );
    // Its serial directory does not exist: the bootloader drops the prefix and finds no device tree at the root.
    assert.deepEqual(summary.failures, [{ serial: '5e200004', file: 'bcm2712-rpi-5-b.dtb', error: 'ERROR 1 File not found' }]);
  });

  test('a failed Pi is listed under the summary in the table output', async () => {
    const result = await sim(pi5s(4));
    assert.equal(result.code, 1);
    assert.match(result.stdout, /\n\nSERIAL {4}FILE {17}ERROR\n5e200004 {2}bcm2712-rpi-5-b\.dtb {2}ERROR 1 File not found\n$/);
  });

  test('sim pxe boots the machines and prints how each ended', async () => {
    const result = await sim(['sim', 'pxe', '--count', '3', '--url', `${http.url}/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^machines: +3$/m);
    assert.match(result.stdout, new RegExp(`^OUTCOME +MACHINES\\nbooted ${http.url}/images/vmlinuz +3$`, 'm'));
  });

  test('sim pxe --json against a server that is not there exits 1 with the errors', async () => {
    const result = await sim(['--json', 'sim', 'pxe', '--count', '2', '--url', 'http://127.0.0.1:9', '--timeout', '5']);
    assert.equal(result.code, 1);
    const summary = JSON.parse(result.stdout);
    assert.deepEqual([summary.succeeded, summary.failed, summary.firstRequestAnswered], [0, 2, 0]);
    assert.match(summary.failures[0].error, /^error: chain http:\/\/127\.0\.0\.1:9\/boot\.ipxe: fetch failed/);
  });

  const badInput: [string, string[], RegExp][] = [
    ['a count of 0', ['sim', 'pi', '--count', '0'], /argument '0' is invalid\. expected a whole number from 1 to 100000/],
    [
      'a count that is not a number',
      ['sim', 'pxe', '--count', 'many', '--url', 'http://127.0.0.1:1'],
      /expected a whole number from 1 to 100000/,
    ],
    ['no count', ['sim', 'pi'], /required option '--count <n>' not specified/],
    ['a serial that is not hex', ['sim', 'pi', '--count', '1', '--serial-start', 'xyz'], /this is not a Pi serial: expected 8 hex digits/],
    ['a serial of 7 digits', ['sim', 'pi', '--count', '1', '--serial-start', '1234567'], /not a Pi serial/],
    ['serials past ffffffff', ['sim', 'pi', '--count', '2', '--serial-start', 'ffffffff'], /2 serials from ffffffff go past ffffffff/],
    ['an unknown model', ['sim', 'pi', '--count', '1', '--model', 'pi3'], /Allowed choices are pi4, pi5/],
    ['a port out of range', ['sim', 'pi', '--count', '1', '--tftp-port', '70000'], /expected a port from 1 to 65535/],
    ['a host with a space', ['sim', 'pi', '--count', '1', '--host', 'a b'], /expected an IP address or a host name/],
    [
      'a URL that is not a URL',
      ['sim', 'pxe', '--count', '1', '--url', 'not a url'],
      /expected an http:\/\/ URL like http:\/\/127\.0\.0\.1:8080/,
    ],
    ['a URL that is not http', ['sim', 'pxe', '--count', '1', '--url', 'ftp://127.0.0.1/'], /expected an http:\/\/ or https:\/\/ URL/],
    ['no URL', ['sim', 'pxe', '--count', '1'], /required option '--url <url>' not specified/],
    [
      'a bad MAC',
      ['sim', 'pxe', '--count', '1', '--url', 'http://127.0.0.1:1', '--mac-start', '52:54'],
      /expected a MAC address like 52:54:00:00:00:01/,
    ],
    ['a negative arrival', ['sim', 'pi', '--count', '1', '--arrival', '-1'], /expected seconds from 0 to 3600/],
  ];
  for (const [what, args, message] of badInput) {
    test(`${what} is refused with exit 2 and one line saying why`, async () => {
      const result = await sim(args);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message);
      assert.match(result.stderr, /^muster: /);
      assert.equal(result.stderr.trimEnd().split('\n').length, 1, 'one line');
    });
  }

  test('sim pi --help shows the options and examples and exits 0', async () => {
    const result = await sim(['sim', 'pi', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: muster sim pi \[options\]/);
    assert.match(result.stdout, /--serial-start <hex>/);
    assert.match(result.stdout, /muster sim pi --count 1000 --model pi5 --arrival 60 --json/);
  });
});
