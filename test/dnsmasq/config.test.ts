import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../cli/cli-process.ts';
import { runDnsmasqCli } from './cli.ts';

const dnsmasq = '/usr/sbin/dnsmasq';

/** dnsmasq's own syntax check of a config: its exit code and what it said. */
function dnsmasqTest(config: string): Promise<{ code: number; output: string }> {
  const file = join(tempDir('muster-dnsmasq-conf-'), 'muster.conf');
  writeFileSync(file, config);
  return new Promise((resolve) => {
    execFile(dnsmasq, ['--test', `--conf-file=${file}`], (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() }),
    );
  });
}

const options = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));

describe('muster dnsmasq config', () => {
  test('proxy-DHCP pointing at muster: every option, and dnsmasq accepts the file', async () => {
    const result = await runDnsmasqCli(['config', '--subnet', '192.168.1.0/24', '--muster-host', '192.168.1.10', '--interface', 'eth0']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.deepEqual(options(result.stdout), [
      'port=0',
      'interface=eth0',
      'dhcp-range=192.168.1.0,proxy,255.255.255.0',
      'dhcp-no-override',
      'log-dhcp',
      'dhcp-userclass=set:ipxe,iPXE',
      'dhcp-match=set:ipxe,175',
      'dhcp-mac=set:rpi,b8:27:eb:*:*:*',
      'dhcp-mac=set:rpi,dc:a6:32:*:*:*',
      'dhcp-mac=set:rpi,e4:5f:01:*:*:*',
      'dhcp-mac=set:rpi,28:cd:c1:*:*:*',
      'dhcp-mac=set:rpi,d8:3a:dd:*:*:*',
      'dhcp-mac=set:rpi,2c:cf:67:*:*:*',
      'dhcp-mac=set:rpi,88:a2:9e:*:*:*',
      'pxe-service=tag:!ipxe,tag:!rpi,x86PC,"muster: iPXE (BIOS)",undionly.kpxe,192.168.1.10',
      'pxe-service=tag:!ipxe,x86-64_EFI,"muster: iPXE (UEFI x86-64)",ipxe.efi,192.168.1.10',
      'pxe-service=tag:!ipxe,BC_EFI,"muster: iPXE (UEFI x86-64)",ipxe.efi,192.168.1.10',
      'pxe-service=tag:!ipxe,ARM64_EFI,"muster: iPXE (UEFI ARM64)",snp-arm64.efi,192.168.1.10',
      'dhcp-boot=tag:ipxe,http://192.168.1.10:8080/boot.ipxe',
      'pxe-service=tag:rpi,x86PC,"Raspberry Pi Boot   "',
      'dhcp-boot=tag:rpi,bootcode.bin,,192.168.1.10',
    ]);
    assert.deepEqual(await dnsmasqTest(result.stdout), { code: 0, output: 'dnsmasq: syntax check OK.' });
  });

  test('every block of options is explained by a comment right above it', async () => {
    const result = await runDnsmasqCli(['config', '--subnet', '10.0.0.0/16', '--muster-host', '10.0.0.5', '--tftp-local', '/srv/tftp']);
    const blocks = result.stdout.split('\n\n').map((block) => block.split('\n').filter((line) => line !== ''));
    for (const block of blocks) {
      if (block.length === 0) continue;
      assert.ok(block[0].startsWith('#'), `a block starts with a comment:\n${block.join('\n')}`);
    }
  });

  test('the variants dnsmasq 2.90 accepts: TFTP served locally for the watch mode, no Pis, no prefix length, other ports', async () => {
    const variants = [
      ['--subnet', '192.168.1.0', '--muster-host', '192.168.1.10', '--tftp-local', '/srv/tftp', '--log-file', '/var/log/dnsmasq.log'],
      ['--subnet', '192.168.1.0/24', '--muster-host', '192.168.1.10', '--no-pi'],
      ['--subnet', '172.16.0.0/12', '--muster-host', '172.16.5.1', '--http-port', '80', '--uefi-file', 'snponly.efi'],
      ['--subnet', '192.168.1.0/24', '--muster-host', '192.168.1.10', '--tftp-port', '6969'],
    ];
    for (const args of variants) {
      const result = await runDnsmasqCli(['config', ...args]);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.deepEqual(await dnsmasqTest(result.stdout), { code: 0, output: 'dnsmasq: syntax check OK.' }, args.join(' '));
    }
  });

  test('TFTP served by dnsmasq itself: enable-tftp, its root, its log file, and no server address in the PXE answers', async () => {
    const result = await runDnsmasqCli([
      'config',
      '--subnet',
      '192.168.1.0/24',
      '--muster-host',
      '192.168.1.10',
      '--tftp-local',
      '/srv/tftp',
      '--log-file',
      '/var/log/dnsmasq.log',
    ]);
    const lines = options(result.stdout);
    for (const expected of [
      'enable-tftp',
      'tftp-root=/srv/tftp',
      'log-facility=/var/log/dnsmasq.log',
      'dhcp-boot=tag:ipxe,http://192.168.1.10:8080/boot.ipxe',
    ]) {
      assert.ok(lines.includes(expected), expected);
    }
    assert.deepEqual(
      lines.filter((line) => line.startsWith('pxe-service=')),
      [
        'pxe-service=tag:!ipxe,tag:!rpi,x86PC,"muster: iPXE (BIOS)",undionly.kpxe',
        'pxe-service=tag:!ipxe,x86-64_EFI,"muster: iPXE (UEFI x86-64)",ipxe.efi',
        'pxe-service=tag:!ipxe,BC_EFI,"muster: iPXE (UEFI x86-64)",ipxe.efi',
        'pxe-service=tag:!ipxe,ARM64_EFI,"muster: iPXE (UEFI ARM64)",snp-arm64.efi',
        'pxe-service=tag:rpi,x86PC,"Raspberry Pi Boot   "',
      ],
    );
    assert.ok(!lines.some((line) => line.startsWith('dhcp-boot=tag:rpi')), 'the Pi asks the dnsmasq that answered it');
  });

  test('a TFTP port other than 69 is said to be unreachable for PXE ROMs and Pis, in the file and on stderr', async () => {
    const result = await runDnsmasqCli(['config', '--subnet', '192.168.1.0/24', '--muster-host', '192.168.1.10', '--tftp-port', '6969']);
    assert.equal(result.code, 0);
    assert.match(
      result.stderr,
      /^muster: warning: muster's TFTP listens on port 6969, but PXE ROMs and Pi bootloaders always ask on port 69/,
    );
    assert.match(result.stdout, /# redirect 69 to 6969 on 192\.168\.1\.10/);
  });

  test('a muster host outside the subnet is a warning when Pis boot: their bootloader does not route', async () => {
    const result = await runDnsmasqCli(['config', '--subnet', '192.168.1.0/24', '--muster-host', '10.0.0.1']);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /--muster-host 10\.0\.0\.1 is outside 192\.168\.1\.0\/24: Pi bootloaders do not route/);
    const noPi = await runDnsmasqCli(['config', '--subnet', '192.168.1.0/24', '--muster-host', '10.0.0.1', '--no-pi']);
    assert.equal(noPi.stderr, '');
  });

  test('bad input exits 2 with a message naming the option, before printing anything', async () => {
    const base = ['config', '--subnet', '192.168.1.0/24', '--muster-host', '192.168.1.10'];
    const cases: [string[], RegExp][] = [
      [['config', '--subnet', '300.1.1.0/24', '--muster-host', '192.168.1.10'], /--subnet.*expected a subnet such as 192\.168\.1\.0\/24/],
      [['config', '--subnet', '192.168.1.0/33', '--muster-host', '192.168.1.10'], /expected a prefix length from 1 to 32/],
      [['config', '--subnet', '192.168.1.0/24/8', '--muster-host', '192.168.1.10'], /expected a subnet/],
      [['config', '--subnet', '192.168.1.0/24', '--muster-host', 'muster.lan'], /--muster-host.*expected an IPv4 address/],
      [['config', '--subnet', '192.168.1.0/24', '--muster-host', '0.0.0.0'], /0\.0\.0\.0 is not the address of a host/],
      [[...base, '--http-port', '70000'], /--http-port.*expected a port from 1 to 65535/],
      [[...base, '--tftp-port', '0'], /--tftp-port.*expected a port from 1 to 65535/],
      [[...base, '--tftp-port', '69x'], /expected a port from 1 to 65535/],
      [[...base, '--interface', 'eth0,eth1'], /expected a network interface name/],
      [[...base, '--tftp-local', '/srv/tftp,eth0'], /expected a path without commas/],
      [[...base, '--uefi-file', 'ipxe.efi,10.0.0.1'], /expected a file name/],
      [['config', '--muster-host', '192.168.1.10'], /required option '--subnet <net\[\/len\]>' not specified/],
      [['config', '--subnet', '192.168.1.0/24'], /required option '--muster-host <ip>' not specified/],
    ];
    for (const [args, message] of cases) {
      const result = await runDnsmasqCli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
    }
  });
});
