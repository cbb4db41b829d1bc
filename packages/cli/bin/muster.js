#!/usr/bin/env node
// Starts the muster CLI on Node 24, even when the `node` on PATH is older: Node 24 comes as the `node` npm
// package, and this launcher runs the CLI with it. In a checkout it runs the TypeScript source directly; an
// installed package ships no source, only the compiled dist/muster.js (scripts/build.ts).
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const minimumMajor = 24;
const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, '..', 'src', 'main.ts');
const main = existsSync(source) ? source : join(here, '..', '..', '..', 'dist', 'muster.js');
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
    `muster: needs Node ${minimumMajor} or newer, and this is Node ${process.versions.node}: run \`npm install\` where muster is installed (it brings Node ${minimumMajor} as the \`node\` package), or install Node ${minimumMajor}\n`,
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
