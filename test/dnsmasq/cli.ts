import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { type CliOptions, type CliResult, mainPath, tempDir } from '../cli/cli-process.ts';

function environment(options: CliOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MUSTER_SERVER: undefined,
    MUSTER_TOKEN: undefined,
    MUSTER_CONFIG_DIR: tempDir('muster-config-'),
    ...options.env,
  } as NodeJS.ProcessEnv;
}

/** Starts `muster dnsmasq ARGS` as a process of its own, isolated from the caller's login; the caller ends it. */
export function startDnsmasqCli(args: string[], options: CliOptions = {}): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [mainPath, 'dnsmasq', ...args], { env: environment(options), stdio: ['pipe', 'pipe', 'pipe'] });
  // Reported where the caller reads: on stderr, and the exit that follows ends any wait on it.
  child.on('error', (error) => child.stderr.emit('data', Buffer.from(`muster dnsmasq could not start: ${error.message}\n`)));
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  return child;
}

/** Runs `muster dnsmasq ARGS` to its end. */
export function runDnsmasqCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = startDnsmasqCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
