import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../cli/cli-process.ts';
import { missingToolMessage, testTool } from '../tools/list.ts';

/*
 * The README's "A five-minute tour" and "Network boot" run here as written: their ```sh blocks, in order, as
 * one bash script with `set -euo pipefail`, in a fresh directory, against a `muster serve` on 127.0.0.1:8080
 * whose data directory is that directory's muster-data (as `npm start` makes it in a checkout).
 *
 * One rule changes how a line runs: a line whose comment ends in "runs until Ctrl-C" runs for a few seconds
 * and is then sent SIGINT, as a reader would press Ctrl-C; being stopped that way counts as success. Between
 * blocks the script prints a marker line, so each block's output can be checked on its own.
 *
 * `npx muster` finds this checkout's CLI the way it does in the checkout itself: as a local bin,
 * node_modules/.bin/muster in the tour's directory, linked to packages/cli/bin/muster. npm runs offline
 * with a cache of its own, so it can never fetch some other `muster` from a registry.
 */

const repo = join(import.meta.dirname, '..', '..');
const mainPath = join(repo, 'packages', 'cli', 'src', 'main.ts');
const launcher = join(repo, 'packages', 'cli', 'bin', 'muster');
const port = 8080;
const sections = ['A five-minute tour', 'Network boot'];
const ctrlCSeconds = 5;
const scriptTimeoutMs = 150_000;
const marker = (n: number) => `@@ README block ${n}`;

/** The ```sh blocks of a `## ` section of the README. */
export function shellBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  assert.notEqual(start, -1, `README.md has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

/** A block as the test runs it: the long-running lines stopped by SIGINT after a while, everything else as written. */
function runnable(block: string): string {
  return block
    .split('\n')
    .map((line) => {
      if (!/#.*runs until Ctrl-C\s*$/.test(line)) return line;
      const command = line.replace(/\s*#.*$/, '');
      return `timeout --signal=INT ${ctrlCSeconds} ${command} || [ $? -eq 124 ]`;
    })
    .join('\n');
}

function tourScript(blocks: readonly string[]): string {
  // A marker starts on a line of its own even after output without a final newline (curl's).
  const line = (n: number) => `printf '\\n%s\\n' '${marker(n)}'`;
  const body = blocks.map((block, n) => `${line(n)}\n${runnable(block)}`).join('\n');
  return `set -euo pipefail\n${body}\n${line(blocks.length)}\n`;
}

/** Why port 8080 at one address cannot be had, or undefined when it is free (or the address does not exist here). */
function addressTaken(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT' ? undefined : `${host} port ${port} is in use (${error.code})`,
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve(undefined)));
  });
}

/** localhost may be ::1 as well as 127.0.0.1: a server on either would answer the tour instead of the test's. */
async function portTaken(): Promise<string | undefined> {
  return (await addressTaken('127.0.0.1')) ?? (await addressTaken('::1'));
}

/** The environment of a person's fresh shell: no muster or npm settings of the caller, the login kept in `dir`. */
function shellEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|MUSTER_|DATABASE_URL$|DB_|ENABLE_AUTH$|JWT_|LISTEN_ADDR$|NODE_TEST_CONTEXT$|NODE_OPTIONS$|INIT_CWD$)/i.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, '.config'),
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
    npm_config_cache: join(dir, '.npm'),
  };
}

function waitForExit(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => resolve(null), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** `npm start` in the tour's directory, on loopback; TFTP off, since nothing in the tour boots over it. */
async function startServe(dir: string): Promise<{ child: ChildProcess; log: () => string }> {
  let log = '';
  const child = spawn(
    process.execPath,
    [mainPath, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'muster-data'), '--tftp-listen', 'off'],
    { cwd: dir, env: shellEnv(dir), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.on('error', (error) => (log += `muster serve did not start: ${error.message}\n`));
  child.stdout?.on('data', (chunk) => (log += chunk));
  child.stderr?.on('data', (chunk) => (log += chunk));
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return { child, log: () => log };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`muster serve did not become ready on 127.0.0.1:${port}:\n${log}`);
}

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the script with bash in its own process group, ended whole when it finishes or after the time limit. */
function runBash(script: string, dir: string): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script], { cwd: dir, env: shellEnv(dir), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const endGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group has ended already.
      }
    };
    const timer = setTimeout(() => {
      stderr += `\nthe tour was still running after ${scriptTimeoutMs / 1000} s; ended\n`;
      endGroup();
    }, scriptTimeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}bash did not start: ${error.message}\n` });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      endGroup();
      // Output still in the pipes arrives before 'close'; a stray holder of the pipes cannot delay the result.
      const done = setTimeout(() => resolve({ code, stdout, stderr }), 2000);
      child.once('close', () => {
        clearTimeout(done);
        resolve({ code, stdout, stderr });
      });
    });
  });
}

/** The output of block n: what the script printed between its marker and the next. */
function blockOutput(stdout: string, n: number): string {
  const start = stdout.indexOf(`${marker(n)}\n`);
  const end = stdout.indexOf(`${marker(n + 1)}\n`);
  assert.ok(start !== -1 && end !== -1, `the output of block ${n} is incomplete`);
  return stdout.slice(start + marker(n).length + 1, end);
}

const skipReason = async (): Promise<string | undefined> => {
  const taken = await portTaken();
  if (!taken) return undefined;
  if (process.env.CI === 'true') assert.fail(`the README tour talks to localhost:${port}, and ${taken}: free the port for this test`);
  return `${taken}; the README tour talks to localhost:${port}, so it is skipped`;
};

test('the README tour and Network boot section run as written and show what they promise', async (t) => {
  const reason = await skipReason();
  if (reason) return t.skip(reason);
  for (const tool of ['jq', 'curl', 'undionly.kpxe']) assert.ok(existsSync(testTool(tool).path), missingToolMessage(tool));

  const markdown = readFileSync(join(repo, 'README.md'), 'utf8');
  const blocks = sections.flatMap((heading) => shellBlocks(markdown, heading));
  const dir = tempDir('muster-tour-');
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(launcher, join(dir, 'node_modules', '.bin', 'muster'));
  const script = join(dir, '.tour.sh');
  writeFileSync(script, tourScript(blocks));

  const server = await startServe(dir);
  let result: ScriptResult;
  try {
    result = await runBash(script, dir);
  } finally {
    server.child.kill('SIGTERM');
    if ((await waitForExit(server.child, 15_000)) === null && server.child.exitCode === null) server.child.kill('SIGKILL');
  }
  const context = `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}\n--- muster serve\n${server.log()}`;
  assert.equal(result.code, 0, `the tour failed${context}`);
  assert.equal(blocks.length, 5, 'the tour has login, enroll, machine, API and network boot blocks');

  const [login, enroll, machine, api, network] = [0, 1, 2, 3, 4].map((n) => blockOutput(result.stdout, n));
  assert.match(login, /^Logged in to http:\/\/localhost:8080 as admin/m, context);
  assert.match(enroll, /^\{"id":"m_\w+","state":"enrolled",/m, context);
  // The machine is listed, then followed from enrolled through building to ready; the token is printed once.
  assert.match(machine, /^ID +STATE +HOSTNAME +FLEET +SERIAL +MAC +LAST SEEN$/m, context);
  assert.match(machine, /^m_\w+ +enrolled +- +- +ABC123 +00:11:22:33:44:55 /m, context);
  assert.match(machine, /machine\.state_changed .* from=enrolled to=configured$/m, context);
  assert.match(machine, /machine\.state_changed .* from=building to=ready$/m, context);
  assert.match(machine, /^token: +mst_\S+$/m, context);
  // The API answers the same question: the machine, ready, in rack r07.
  const listed = JSON.parse(api.trim()) as { items: { state: string; hostname: string; labels: Record<string, string> }[] };
  assert.deepEqual(
    listed.items.map((m) => ({ state: m.state, hostname: m.hostname, labels: m.labels })),
    [{ state: 'ready', hostname: 'edge-1', labels: { rack: 'r07' } }],
  );
  // The Pi's file is rendered for it, it is listed by serial, and dnsmasq gets a config pointing at muster.
  assert.match(network, /^console=serial0,115200 hostname=\S*$/m, context);
  assert.match(network, /^dca63201 +m_\w+ /m, context);
  assert.match(network, /^dhcp-range=192\.168\.1\.0,proxy/m, context);
});
