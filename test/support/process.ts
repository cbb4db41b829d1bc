import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const cliMain = resolve(repoRoot, 'packages/cli/src/main.ts');

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output(): string;
}

/** Starts `muster serve` as its own process (the command users run) and waits until /readyz answers. */
export async function spawnServer(dataDir: string, env: Record<string, string | undefined> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [cliMain, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { ...process.env, MUSTER_ENROLL_RATE: '0', MUSTER_LOG_LEVEL: 'warn', MUSTER_TFTP_LISTEN: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let spawnError: Error | undefined;
  child.on('error', (error) => (spawnError = error));
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (spawnError) throw new Error(`muster serve could not start: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`muster serve exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { child, url, output: () => output };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`muster serve did not become ready:\n${output}`);
}

/** Resolves with the exit code, or the signal's name when a signal ended the process. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((r) => {
    child.once('exit', (code, signal) => r(code ?? signal ?? -1));
    child.once('error', (error) => child.pid === undefined && r(error.message));
  });
}
