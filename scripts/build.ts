// Compiles muster for an installed package (npm pack runs it): contract, server and CLI bundled into dist/ as
// JavaScript, so that Node never strips types under node_modules (which it refuses). npm dependencies stay
// imports of their own packages (some, like the API docs page, read files beside their code). Running from a
// checkout needs none of this: Node runs the TypeScript directly.
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');
const workspaces = ['contract', 'server', 'cli', 'sim'];
const external = new Set<string>(builtinModules.flatMap((name) => [name, `node:${name}`]));
for (const workspace of workspaces) {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', workspace, 'package.json'), 'utf8'));
  for (const name of Object.keys(manifest.dependencies ?? {})) if (!name.startsWith('@muster/')) external.add(name);
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: {
    muster: 'packages/cli/src/main.ts',
    // The TFTP transfer threads load this file by name (boot/tftp/pool.ts).
    'tftp-worker': 'packages/server/src/boot/tftp/worker.ts',
    // And the template render threads load this one (platform/templates/pool.ts).
    'render-worker': 'packages/server/src/platform/templates/worker.ts',
  },
  outdir: 'dist',
  bundle: true,
  // Commands that need no server (most API commands) do not load it: the server is a chunk of its own.
  splitting: true,
  // Beside the entries, so that every file finds tftp-worker.js and render-worker.js beside it.
  chunkNames: 'chunk-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // Dependencies subpath imports (pino-pretty, ajv-formats…) are external too.
  external: [...external].flatMap((name) => [name, `${name}/*`]),
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.entries(result.metafile.outputs).filter(([name]) => name.endsWith('.js'));
const bytes = outputs.reduce((sum, [, output]) => sum + output.bytes, 0);
if (!process.argv.includes('--quiet')) process.stdout.write(`built dist/: ${outputs.length} files, ${(bytes / 1024).toFixed(0)} KiB\n`);
