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
