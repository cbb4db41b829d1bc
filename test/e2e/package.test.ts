import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { tempDir } from '../cli/cli-process.ts';
import { enrollBody } from '../support/harness.ts';
import { exited, freePort, repoRoot } from '../support/process.ts';

const installMs = 8 * 60_000;

/** Runs a command to its end (bounded); resolves with its exit code and output. */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? installMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) || 1 : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** Every file under a directory, recursively (node_modules of dependencies excluded). */
function filesUnder(dir: string, skip: (path: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (skip(path)) return [];
    return entry.isDirectory() ? filesUnder(path, skip) : [path];
  });
}

// The machine's own Node (older than 24 on a stock Debian 12) first on PATH: the Node-20-host case.
const systemPath = ['/usr/local/bin', '/usr/bin', '/bin'].join(':');

describe('the package installs anywhere: npm pack, then npm install -g on a fresh prefix', () => {
  const work = tempDir('muster-package-');
  const prefix = join(work, 'prefix');
  let server: ChildProcess | null = null;
  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await exited(server);
    }
  });

  test('the packed package installs, runs --help and serves, on compiled code and the Node 24 it brings', {
    timeout: 15 * 60_000,
  }, async () => {
    const npm = join(repoRoot, 'node_modules', '.bin', 'npm');
    const npmCommand = existsSync(npm) ? npm : 'npm';
    const packed = await run(npmCommand, ['pack', '--pack-destination', work, '--loglevel=error'], { cwd: repoRoot });
    assert.equal(packed.code, 0, packed.output);
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, packed.output);

    const installed = await run(npmCommand, [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      join(work, tarball),
    ]);
    assert.equal(installed.code, 0, installed.output);
    const packageDir = join(prefix, 'lib', 'node_modules', 'muster');
    const shipped = filesUnder(packageDir, (path) => path === join(packageDir, 'node_modules'));
    assert.deepEqual(
      shipped.filter((path) => path.endsWith('.ts')),
      [],
      'no TypeScript is shipped: Node would refuse to strip it',
    );
    for (const file of ['muster.js', 'tftp-worker.js', 'render-worker.js']) assert.ok(existsSync(join(packageDir, 'dist', file)), file);
    assert.ok(statSync(join(prefix, 'bin', 'muster')).isFile());

    const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${systemPath}`, MUSTER_TFTP_LISTEN: undefined };
    const help = await run(join(prefix, 'bin', 'muster'), ['--help'], { env, timeoutMs: 60_000 });
    assert.equal(help.code, 0, help.output);
    assert.match(help.output, /^Usage: muster /);
    for (const command of ['serve', 'machine', 'pi', 'backup']) assert.match(help.output, new RegExp(`\\n  ${command} `));

    const port = await freePort();
    const dataDir = join(work, 'data');
    server = spawn(
      join(prefix, 'bin', 'muster'),
      ['serve', '--listen', `127.0.0.1:${port}`, '--tftp-listen', '127.0.0.1:0', '--data-dir', dataDir],
      {
        env: { ...env, MUSTER_LOG_FORMAT: 'json' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    server.stdout?.on('data', (chunk) => (output += chunk));
    server.stderr?.on('data', (chunk) => (output += chunk));
    server.on('error', (error) => (output += `\ncould not start: ${error.message}`));
    let ready = false;
    for (let i = 0; i < 300 && !ready && server.exitCode === null; i++) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ready, `the installed muster serve answers /readyz:\n${output}`);
    const enrolled = await fetch(`http://127.0.0.1:${port}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(enrollBody(1)),
    });
    assert.equal(enrolled.status, 201, await enrolled.text());
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^muster_build_info\{version="[^"]+",node="24\.\d+\.\d+"\} 1$/m, 'the package runs on its own Node 24');
    assert.match(output, /"msg":"TFTP listening"/, 'TFTP runs');
    // The transfer threads start with the first transfer: the compiled worker must load as a thread.
    const packageNode = join(packageDir, 'node_modules', 'node', 'bin', 'node');
    const worker = await run(
      packageNode,
      [
        '-e',
        "const w = new (require('node:worker_threads').Worker)(process.argv[1]); w.on('online', () => process.exit(0)); w.on('error', (e) => { console.error(e); process.exit(1); });",
        join(packageDir, 'dist', 'tftp-worker.js'),
      ],
      { env, timeoutMs: 60_000 },
    );
    assert.equal(worker.code, 0, worker.output);
    server.kill('SIGTERM');
    assert.equal(await exited(server), 0, output);
  });
});
