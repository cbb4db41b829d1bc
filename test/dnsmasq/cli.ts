import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { type CliOptions, type CliResult, collect, startCli } from '../cli/cli-process.ts';

/** Starts `muster dnsmasq ARGS` as a process of its own, isolated from the caller's login; the caller ends it. */
export function startDnsmasqCli(args: string[], options: CliOptions = {}): ChildProcessWithoutNullStreams {
  const child = startCli(['dnsmasq', ...args], options);
  // Reported where the caller reads: on stderr, and the exit that follows ends any wait on it.
  child.on('error', (error) => child.stderr.emit('data', Buffer.from(`muster dnsmasq could not start: ${error.message}\n`)));
  return child;
}

/** Runs `muster dnsmasq ARGS` to its end. */
export function runDnsmasqCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(startDnsmasqCli(args, options));
}
