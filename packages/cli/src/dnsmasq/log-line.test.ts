import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseTftpLogLine } from './log-line.ts';
import { defaultSerialPattern, parseSerialPattern, serialFromTftpPath } from './pi-serial.ts';

describe('parseTftpLogLine', () => {
  test('the lines dnsmasq 2.90 writes to a log-facility file', () => {
    // Taken from a real dnsmasq 2.90 run with --log-facility=FILE.
    assert.deepEqual(parseTftpLogLine('Nov 23 18:43:00 dnsmasq-tftp[11960]: sent /tmp/dq/root/abcd1234/start4.elf to 127.0.0.1'), {
      kind: 'sent',
      path: '/tmp/dq/root/abcd1234/start4.elf',
      client: '127.0.0.1',
    });
    assert.deepEqual(
      parseTftpLogLine('Nov 23 18:43:00 dnsmasq-tftp[11960]: file /tmp/dq/root/abcd1234//config.txt not found for 127.0.0.1'),
      {
        kind: 'not_found',
        path: '/tmp/dq/root/abcd1234//config.txt',
        client: '127.0.0.1',
      },
    );
  });

  test('syslog and journal lines with a host name, RFC 3339 stamps, and bare lines', () => {
    const expected = { kind: 'not_found', path: '/srv/tftp/abcd1234/start4.elf', client: '192.168.1.50' };
    const message = 'dnsmasq-tftp[812]: file /srv/tftp/abcd1234/start4.elf not found for 192.168.1.50';
    assert.deepEqual(parseTftpLogLine(`Oct 11 18:00:00 netboot ${message}`), expected);
    assert.deepEqual(parseTftpLogLine(`2025-10-11T18:00:00.123456+00:00 netboot ${message}`), expected);
    assert.deepEqual(parseTftpLogLine(message), expected);
    assert.deepEqual(parseTftpLogLine(`${message}\r`), expected);
  });

  test('failures, timeouts, refusals and client errors', () => {
    assert.deepEqual(parseTftpLogLine('dnsmasq-tftp[812]: failed sending /srv/tftp/abcd1234/start4.elf to 192.168.1.50'), {
      kind: 'failed',
      path: '/srv/tftp/abcd1234/start4.elf',
      client: '192.168.1.50',
    });
    assert.deepEqual(parseTftpLogLine('dnsmasq-tftp[812]: timeout sending /srv/tftp/abcd1234/kernel8.img to 192.168.1.50'), {
      kind: 'failed',
      path: '/srv/tftp/abcd1234/kernel8.img',
      client: '192.168.1.50',
    });
    assert.deepEqual(parseTftpLogLine('dnsmasq-tftp[812]: cannot access /srv/tftp/abcd1234/config.txt: Permission denied'), {
      kind: 'denied',
      path: '/srv/tftp/abcd1234/config.txt',
      client: null,
    });
    assert.deepEqual(parseTftpLogLine('dnsmasq-tftp[812]: error 0 Early terminate received from 192.168.1.50'), {
      kind: 'client_error',
      path: null,
      client: '192.168.1.50',
    });
  });

  test('older dnsmasq: "file … not found" without the client, and "TFTP …" under dnsmasq[PID]', () => {
    assert.deepEqual(parseTftpLogLine('dnsmasq-tftp[9]: file /srv/tftp/abcd1234/start.elf not found'), {
      kind: 'not_found',
      path: '/srv/tftp/abcd1234/start.elf',
      client: null,
    });
    assert.deepEqual(parseTftpLogLine('Oct 11 18:00:00 pi dnsmasq[9]: TFTP sent /srv/tftp/abcd1234/start4.elf to 10.0.0.2'), {
      kind: 'sent',
      path: '/srv/tftp/abcd1234/start4.elf',
      client: '10.0.0.2',
    });
  });

  test('lines that are not about a TFTP transfer are ignored', () => {
    for (const line of [
      '',
      'Nov 23 18:42:59 dnsmasq[11960]: started, version 2.90 DNS disabled',
      'Nov 23 18:42:59 dnsmasq-tftp[11960]: TFTP root is /tmp/dq/root  ',
      'Oct 11 18:00:00 netboot dnsmasq-dhcp[812]: 653460281 PXE(eth0) b8:27:eb:5e:2a:2e proxy',
      'kernel: sent /srv/tftp/abcd1234/start4.elf to 10.0.0.2',
      'xdnsmasq-tftp[1]: sent /a/b to c',
    ]) {
      assert.equal(parseTftpLogLine(line), null, line);
    }
  });
});

describe('serialFromTftpPath', () => {
  const roots = ['/srv/tftp'];

  test('the first segment under the root, for a Pi 4 and a Pi 5 request', () => {
    assert.equal(serialFromTftpPath('/srv/tftp/abcd1234/start4.elf', roots), 'abcd1234');
    assert.equal(serialFromTftpPath('/srv/tftp/abcd1234//config.txt', roots), 'abcd1234');
    assert.equal(serialFromTftpPath('/srv/tftp//abcd1234/overlays/vc4-kms-v3d.dtbo', roots), 'abcd1234');
    assert.equal(serialFromTftpPath('/srv/tftp/abcd1234/start4.elf', ['/srv/tftp/']), 'abcd1234');
    assert.equal(serialFromTftpPath('/abcd1234/start4.elf', ['/']), 'abcd1234');
  });

  test('nothing for paths outside the root, files at the root, and segments that are no serial', () => {
    for (const path of [
      '/srv/tftpx/abcd1234/start4.elf',
      '/other/abcd1234/start4.elf',
      '/srv/tftp/bootcode.bin',
      '/srv/tftp/abcd1234',
      '/srv/tftp/abcd1234/',
      '/srv/tftp/abcd123/start4.elf',
      '/srv/tftp/abcd12345/start4.elf',
      '/srv/tftp/.muster/sha256/x',
      '/srv/tftp/dc-a6-32-01-36-c2/start4.elf',
    ]) {
      assert.equal(serialFromTftpPath(path, roots, defaultSerialPattern), null, path);
    }
  });

  test('a serial in upper case is the same serial, lower-cased as the server stores it', () => {
    assert.equal(serialFromTftpPath('/srv/tftp/ABCD1234/start4.elf', roots, defaultSerialPattern), 'abcd1234');
  });

  test('--serial-pattern matches the whole segment', () => {
    const macs = parseSerialPattern('[0-9a-f]{2}(-[0-9a-f]{2}){5}');
    assert.equal(serialFromTftpPath('/srv/tftp/dc-a6-32-01-36-c2/start4.elf', roots, macs), 'dc-a6-32-01-36-c2');
    assert.equal(serialFromTftpPath('/srv/tftp/xdc-a6-32-01-36-c2/start4.elf', roots, macs), null);
    assert.throws(() => parseSerialPattern('('), /not a regular expression/);
  });
});
