// The first step of `npm test`: makes sure every system tool the suites use is there, installing what is
// missing as root on a Debian-like system, and otherwise stopping at once with what to install.
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { testTools } from './list.ts';
import { type Machine, planToolSetup, stopLines, toolState } from './plan.ts';

const aptTimeoutMs = 20 * 60_000;
const policyRcd = '/usr/sbin/policy-rc.d';

function thisMachine(): Machine {
  return { root: process.getuid?.() === 0, apt: existsSync('/usr/bin/apt-get') };
}

/** Runs apt-get quietly; resolves with its output on success, rejects with it otherwise. */
function aptGet(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`apt-get ${args.join(' ')} did not finish in ${aptTimeoutMs / 60_000} minutes\n${output}`));
    }, aptTimeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`apt-get could not start: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`apt-get ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** Installs packages without starting the daemons some of them ship (tftpd-hpa would take port 69). */
async function install(packages: string[], reinstall: string[]): Promise<void> {
  const guard = !existsSync(policyRcd);
  if (guard)
    writeFileSync(policyRcd, '#!/bin/sh\n# muster test set-up: install packages without starting their services\nexit 101\n', {
      mode: 0o755,
    });
  try {
    await aptGet(['update', '-qq']);
    const common = ['install', '-y', '-qq', '--no-install-recommends', '-o', 'Dpkg::Use-Pty=0'];
    if (packages.length > 0) await aptGet([...common, ...packages]);
    if (reinstall.length > 0) await aptGet([...common, '--reinstall', ...reinstall]);
  } finally {
    if (guard) rmSync(policyRcd, { force: true });
  }
}

async function main(): Promise<number> {
  const machine = thisMachine();
  const plan = planToolSetup(testTools, toolState, machine);
  if (plan.action === 'none') return 0;
  if (plan.action === 'stop') {
    for (const line of plan.lines) process.stderr.write(`muster test set-up: ${line}\n`);
    return 1;
  }
  const all = [...plan.packages, ...plan.reinstall.map((p) => `${p} (again)`)];
  process.stdout.write(`muster test set-up: installing ${all.join(', ')} with apt-get\n`);
  try {
    await install(plan.packages, plan.reinstall);
  } catch (error) {
    process.stderr.write(`muster test set-up: ${(error as Error).message}\n`);
    return 1;
  }
  const missing = testTools.filter((tool) => toolState(tool) === 'missing');
  const broken = testTools.filter((tool) => toolState(tool) === 'broken');
  if (missing.length + broken.length === 0) return 0;
  process.stderr.write('muster test set-up: apt-get finished, yet these still cannot run:\n');
  for (const line of stopLines(missing, broken, machine)) process.stderr.write(`muster test set-up: ${line}\n`);
  return 1;
}

process.exitCode = await main();
