import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testTool } from '../tools/list.ts';

export const mainPath = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'src', 'main.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed; stdin is closed at once when absent. */
  input?: string;
}

const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory, removed when the test process exits. */
export function tempDir(prefix = 'muster-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

function cliEnv(options: CliOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MUSTER_SERVER: undefined,
    MUSTER_TOKEN: undefined,
    MUSTER_DATA_DIR: undefined,
    DATABASE_URL: undefined,
    MUSTER_CONFIG_DIR: tempDir('muster-config-'),
    MUSTER_TFTP_LISTEN: 'off',
    ...options.env,
  } as NodeJS.ProcessEnv;
}

const shellQuote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** Runs `muster ARGS` on a pseudo-terminal (util-linux `script`), as in a person's shell: stdout and stderr arrive together. */
export function runCliOnTerminal(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const command = [process.execPath, mainPath, ...args].map(shellQuote).join(' ');
  return collect(
    withInput(
      spawn(testTool('script').path, ['-qefc', command, '/dev/null'], { env: cliEnv(options), stdio: ['pipe', 'pipe', 'pipe'] }),
      options,
    ),
  );
}

/** Runs `muster ARGS` as a person would (a new process), isolated from the caller's login and server. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(startCli(args, options));
}

/** Starts `muster ARGS` as a process of its own, isolated from the caller's login and server; the caller ends it. */
export function startCli(args: string[], options: CliOptions = {}): ChildProcessWithoutNullStreams {
  return withInput(spawn(process.execPath, [mainPath, ...args], { env: cliEnv(options), stdio: ['pipe', 'pipe', 'pipe'] }), options);
}

function withInput(child: ChildProcessWithoutNullStreams, options: CliOptions): ChildProcessWithoutNullStreams {
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  return child;
}

/** A started command's output and exit code, once it has ended. */
export function collect(child: ChildProcessWithoutNullStreams): Promise<CliResult> {
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
