import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../packages/cli/src/program.ts';

const readme = readFileSync(new URL('../../packages/cli/README.md', import.meta.url), 'utf8');

interface Leaf {
  path: string;
  options: string[];
}

/** Every command that runs something (no subcommands), with the flags a reader types. */
function leaves(command: Command, prefix: string[] = []): Leaf[] {
  return command.commands.flatMap((sub) => {
    const path = [...prefix, sub.name()];
    if (sub.commands.length > 0) return leaves(sub, path);
    const options = sub.options.map((option) => option.long ?? option.short ?? option.flags);
    return [{ path: `muster ${path.join(' ')}`, options }];
  });
}

/** The text under each `### \`muster …\`` heading, up to the next heading, keyed by the heading. */
function sections(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  const parts = markdown.split(/^(?=#{1,3} )/m);
  for (const part of parts) {
    const heading = /^### `(muster [^`]*)`/.exec(part);
    if (heading) found.set(heading[1], part);
  }
  return found;
}

/** The section of a command: its heading names the command, then arguments or options, never a longer command. */
function sectionOf(all: Map<string, string>, path: string, commandPaths: readonly string[]): string | undefined {
  for (const [heading, text] of all) {
    if (heading !== path && !heading.startsWith(`${path} `)) continue;
    const rest = heading.slice(path.length).trim().split(' ')[0] ?? '';
    const longer = commandPaths.some((other) => other !== path && other === `${path} ${rest}`);
    if (!longer) return text;
  }
  return undefined;
}

describe('packages/cli/README.md', () => {
  const commands = leaves(buildProgram());
  const paths = commands.map((c) => c.path);
  const all = sections(readme);

  test('every command has a ### `muster …` section', () => {
    const missing = paths.filter((path) => sectionOf(all, path, paths) === undefined);
    assert.deepEqual(missing, [], `commands without a section in packages/cli/README.md: ${missing.join(', ')}`);
  });

  test("every option of every command is named in that command's section", () => {
    const missing = commands.flatMap(({ path, options }) => {
      const text = sectionOf(all, path, paths) ?? '';
      return options.filter((option) => !new RegExp(`${option}(?![\\w-])`).test(text)).map((option) => `${path} ${option}`);
    });
    assert.deepEqual(missing, [], `options missing from their command's section: ${missing.join(', ')}`);
  });

  test('every command section holds an example', () => {
    const without = paths.filter((path) => !/```sh\n[^`]*\bmuster /.test(sectionOf(all, path, paths) ?? ''));
    assert.deepEqual(without, []);
  });

  test('no section documents a command that does not exist', () => {
    const stale = [...all.keys()].filter((heading) => !paths.some((path) => heading === path || heading.startsWith(`${path} `)));
    assert.deepEqual(stale, []);
  });
});
