import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobRow } from '../../platform/db/schema.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import type { JobContext, JobHandler } from '../../platform/jobs/runner.ts';
import { transitionInTx } from '../machines/service.ts';
import { findMachineRow, loadMachines } from '../machines/store.ts';

const killGraceMs = 5_000;

/** Runs the builder command in its own process group; resolves on exit 0, rejects otherwise or on timeout. */
function runCommand(command: string, cwd: string, env: Record<string, string>, timeoutSeconds: number, context: JobContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let timedOut = false;
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {}
    };
    const stop = () => {
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), killGraceMs).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      context.log(`builder timed out after ${timeoutSeconds} s; stopping it`);
      stop();
    }, timeoutSeconds * 1000);
    context.signal.addEventListener('abort', stop, { once: true });
    for (const stream of [child.stdout, child.stderr]) {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) context.log(line);
      });
      stream.on('end', () => pending && context.log(pending));
    }
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start the builder: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', stop);
      if (timedOut) reject(new Error(`builder timed out after ${timeoutSeconds} s`));
      else if (context.signal.aborted) reject(context.signal.reason as Error);
      else if (code === 0) resolve();
      else reject(new Error(signal ? `builder was killed by ${signal}` : `builder exited with code ${code}`));
    });
  });
}

/**
 * The build job: writes the machine's configuration to a build directory and runs the configured builder
 * command there (MUSTER_BUILDER_COMMAND). The machine goes building → ready, or failed after the last attempt.
 */
/** What a build needs of the configuration. */
export interface BuildSettings {
  dataDir: string;
  builder: { command: string | null; timeoutSeconds: number; maxAttempts: number };
}

export function buildHandler(config: BuildSettings, transactor: Transactor): JobHandler {
  return {
    async run(job: JobRow, context: JobContext) {
      const row = await findMachineRow(transactor.db, job.machine_id ?? '');
      if (!row) throw new Error(`machine ${job.machine_id} no longer exists`);
      const [machine] = await loadMachines(transactor.db, [row]);
      const dir = join(config.dataDir, 'builds', row.id, job.id);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const configFile = join(dir, 'configuration.nix');
      await writeFile(configFile, row.nixos_config);
      await writeFile(join(dir, 'machine.json'), `${JSON.stringify(machine, null, 2)}\n`);
      context.log(`build directory ${dir}`);
      if (!config.builder.command) {
        context.log('no builder command is configured (MUSTER_BUILDER_COMMAND); the configuration was written and the build is complete');
        return;
      }
      context.log(`running builder: ${config.builder.command}`);
      await runCommand(
        config.builder.command,
        dir,
        {
          MUSTER_JOB_ID: job.id,
          MUSTER_MACHINE_ID: row.id,
          MUSTER_HOSTNAME: row.hostname,
          MUSTER_BUILD_DIR: dir,
          MUSTER_CONFIG_FILE: configFile,
          MUSTER_MACHINE_FILE: join(dir, 'machine.json'),
        },
        config.builder.timeoutSeconds,
        context,
      );
      context.log('builder finished');
    },
    succeeded: (tx, job) => finishBuild(tx, job, 'ready', `build ${job.id} succeeded`),
    failed: (tx, job, error) => finishBuild(tx, job, 'failed', `build ${job.id} failed: ${error}`),
  };
}

async function finishBuild(tx: Tx, job: JobRow, to: 'ready' | 'failed', reason: string): Promise<void> {
  const row = await findMachineRow(tx.db, job.machine_id ?? '');
  // An operator may have moved the machine on (retired it) while it was building.
  if (row?.state === 'building') await transitionInTx(tx, row, to, 'system', reason);
}
