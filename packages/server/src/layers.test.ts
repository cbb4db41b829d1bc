import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const source = import.meta.dirname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

// Only stores (and the database platform itself) speak SQL: services hold the rules and call stores inside the
// transaction they are given, so a query has one home and a service can be read without the schema in mind.
test('only store.ts files and platform/db build queries', () => {
  const query = /\.(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\(|\bsql`|\bsql</;
  const offenders = sourceFiles(source)
    .map((path) => relative(source, path))
    .filter((path) => !path.endsWith('/store.ts') && !path.startsWith('platform/db/'))
    .flatMap((path) =>
      readFileSync(join(source, path), 'utf8')
        .split('\n')
        .flatMap((line, n) => (query.test(line) ? [`${path}:${n + 1}: ${line.trim()}`] : [])),
    );
  assert.deepEqual(offenders, [], 'move these queries into the module’s store.ts');
});

// The layers (docs/architecture.md): platform ← modules ← boot (the doors) ← the app (app.ts, serve.ts, config).
// A file may import its own layer and those below it, never one above.
test('each layer imports only itself and the layers below it', () => {
  const layers = ['platform', 'modules', 'boot', '.'];
  const layerOf = (path: string) => {
    const top = path.split('/')[0];
    return layers.includes(top) && path.includes('/') ? top : '.';
  };
  const offenders = sourceFiles(source).flatMap((file) => {
    const from = layerOf(relative(source, file));
    return [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].flatMap(([, specifier]) => {
      const target = relative(source, join(file, '..', specifier));
      if (target.startsWith('..')) return [];
      const to = layerOf(target);
      return layers.indexOf(to) > layers.indexOf(from) ? [`${relative(source, file)} (${from}) imports ${target} (${to})`] : [];
    });
  });
  assert.deepEqual(offenders, []);
});

// Folders form a tree of uses, not a web: no folder (platform/db, modules/machines, boot/pi, …) imports, however
// indirectly, a folder that imports it back. A cycle means two folders are one concern or a piece sits in the wrong one.
test('no import cycle between folders', () => {
  const folderOf = (path: string) => {
    const parts = path.split('/');
    return parts.length <= 1 ? '.' : parts.length === 2 ? parts[0] : `${parts[0]}/${parts[1]}`;
  };
  const edges = new Map<string, Set<string>>();
  for (const file of sourceFiles(source)) {
    const from = folderOf(relative(source, file));
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = relative(source, join(file, '..', specifier));
      if (target.startsWith('..')) continue;
      const to = folderOf(target);
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  const reaches = (from: string, to: string, seen = new Set<string>()): boolean =>
    [...(edges.get(from) ?? [])].some((next) => next === to || (!seen.has(next) && seen.add(next) && reaches(next, to, seen)));
  const cycles = [...edges].flatMap(([from, tos]) =>
    [...tos].filter((to) => from < to && reaches(to, from)).map((to) => `${from} ⇄ ${to}`),
  );
  assert.deepEqual(cycles, []);
});
