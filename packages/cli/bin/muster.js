#!/usr/bin/env node
// Starts the muster CLI on Node 24 (it runs TypeScript directly), even when the `node` on PATH is older:
// the repository installs Node 24 as the `node` npm package, and this launcher runs the CLI with it.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const minimumMajor = 24;
const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');
const forwardedSignals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

function installedNode() {
  try {
    const path = createRequire(import.meta.url).resolve('node/bin/node');
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return null;
  }
}

function nodeBinary() {
  const installed = installedNode();
  if (installed) return installed;
  if (Number(process.versions.node.split('.')[0]) >= minimumMajor) return process.execPath;
  process.stderr.write(
    `muster: needs Node ${minimumMajor} or newer, and this is Node ${process.versions.node}: run \`npm install\` in the muster repository (it installs Node ${minimumMajor}), or install Node ${minimumMajor}\n`,
  );
  process.exit(1);
}

const child = spawn(nodeBinary(), [main, ...process.argv.slice(2)], { stdio: 'inherit' });

for (const signal of forwardedSignals) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on('error', (error) => {
  process.stderr.write(`muster: cannot start ${child.spawnfile}: ${error.message}\n`);
  process.exit(1);
});

child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so a shell or supervisor sees what really happened.
    for (const s of forwardedSignals) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
