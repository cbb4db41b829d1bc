import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { missingToolMessage, type TestTool, testTools } from './list.ts';
import { planToolSetup, type ToolState, toolState } from './plan.ts';

const tftp = testTools.find((t) => t.name === 'tftp') as TestTool;
const tftpd = testTools.find((t) => t.name === 'in.tftpd') as TestTool;
const rom = testTools.find((t) => t.name === 'iPXE ROM for QEMU') as TestTool;

const states =
  (found: Record<string, ToolState>) =>
  (tool: TestTool): ToolState =>
    found[tool.name] ?? 'ok';

describe('test tool set-up', () => {
  test('nothing to do when every tool is usable', () => {
    assert.deepEqual(
      planToolSetup(testTools, () => 'ok', { root: true, apt: true }),
      { action: 'none' },
    );
    assert.deepEqual(
      planToolSetup(testTools, () => 'ok', { root: false, apt: false }),
      { action: 'none' },
    );
  });

  test('as root with apt-get: installs the missing packages and reinstalls the broken ones, each once', () => {
    const plan = planToolSetup(testTools, states({ tftp: 'missing', 'in.tftpd': 'broken', 'iPXE ROM for QEMU': 'missing' }), {
      root: true,
      apt: true,
    });
    assert.deepEqual(plan, { action: 'install', packages: ['tftp-hpa', 'ipxe-qemu'], reinstall: ['tftpd-hpa'] });
  });

  test('not root: stops with one line per tool that cannot run and the command that installs them', () => {
    const plan = planToolSetup(testTools, states({ tftp: 'missing', 'in.tftpd': 'broken' }), { root: false, apt: true });
    assert.deepEqual(plan, {
      action: 'stop',
      lines: [
        `missing: tftp (${tftp.path}, Debian package tftp-hpa), for the TFTP client tests`,
        `not usable: in.tftpd (${tftpd.path}, Debian package tftpd-hpa), for the simulator tests against tftpd-hpa`,
        "install them with: sudo apt-get install --reinstall tftp-hpa tftpd-hpa   (or run 'npm test' as root, which does it)",
      ],
    });
  });

  test('root without apt-get (not Debian-like): stops and names the packages', () => {
    const plan = planToolSetup(testTools, states({ 'iPXE ROM for QEMU': 'missing' }), { root: true, apt: false });
    assert.deepEqual(plan, {
      action: 'stop',
      lines: [
        `missing: iPXE ROM for QEMU (${rom.path}, Debian package ipxe-qemu), for the QEMU iPXE boot test`,
        'install the equivalents of these Debian packages: ipxe-qemu',
      ],
    });
  });

  test('a program that is there but not executable is broken; a missing one is missing; a readable file is ok', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-tools-'));
    const program = join(dir, 'tftp');
    writeFileSync(program, '#!/bin/sh\n');
    chmodSync(program, 0o644);
    const as = (path: string, kind: TestTool['kind']): TestTool => ({ ...tftp, path, kind });
    assert.equal(toolState(as(program, 'program')), 'broken');
    chmodSync(program, 0o755);
    assert.equal(toolState(as(program, 'program')), 'ok');
    assert.equal(toolState(as(join(dir, 'absent'), 'program')), 'missing');
    assert.equal(toolState(as(dir, 'file')), 'broken', 'a directory where a file should be');
    assert.equal(toolState(as(program, 'file')), 'ok');
  });

  test('every tool has one entry, and tests name a missing tool with its package', () => {
    assert.equal(new Set(testTools.map((t) => t.name)).size, testTools.length);
    assert.equal(
      missingToolMessage('dnsmasq'),
      "dnsmasq (/usr/sbin/dnsmasq) is missing: install it with 'apt-get install dnsmasq-base', or run 'npm test' as root to have it installed",
    );
  });
});
