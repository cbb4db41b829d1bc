import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command, CommanderError } from 'commander';
import { buildProgram } from '../../packages/cli/src/program.ts';
import { runCli, startCli } from './cli-process.ts';

function commandTree(command: Command): Command[] {
  return command.commands.flatMap((sub) => [sub, ...commandTree(sub)]);
}

function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const path = [...prefix, sub.name()];
    return [path, ...commandPaths(sub, path)];
  });
}

describe('muster usage errors', () => {
  test('an unknown option exits 2 with one line naming the help to read', async () => {
    const result = await runCli(['machine', 'ls', '--labl', 'a=b']);
    assert.deepEqual(result, {
      code: 2,
      stdout: '',
      stderr: "muster: unknown option '--labl' (did you mean --label?); see `muster machine ls --help`\n",
    });
  });

  test('an unknown command exits 2 and suggests the nearest one', async () => {
    const result = await runCli(['machin', 'ls']);
    assert.deepEqual(result, {
      code: 2,
      stdout: '',
      stderr: "muster: unknown command 'machin' (did you mean machine?); see `muster --help`\n",
    });
  });

  test('a missing argument exits 2', async () => {
    const result = await runCli(['machine', 'show']);
    assert.deepEqual(result, { code: 2, stdout: '', stderr: "muster: missing required argument 'id'; see `muster machine show --help`\n" });
  });

  test('a state that does not exist exits 2 and lists the states', async () => {
    const result = await runCli(['machine', 'ls', '--state', 'asleep']);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^muster: option '--state <state>' argument 'asleep' is invalid\. Allowed choices are discovered, enrolled, .*retired; see/,
    );
    assert.equal(result.stderr.split('\n').length, 2, 'one line');
  });

  test('a malformed identifier for machine add exits 2 before any request', async () => {
    const result = await runCli(['machine', 'add', '--id', 'serial', '--server', 'http://127.0.0.1:9']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /expected kind:value where kind is one of mac, uuid, serial/);
  });

  test('a firmware default serial is refused: it identifies nothing', async () => {
    const result = await runCli(['machine', 'add', '--id', 'serial:To Be Filled By O.E.M.']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /identifies nothing/);
  });

  test('a label without = exits 2', async () => {
    const result = await runCli(['machine', 'set', 'm_1', '--label', 'rack']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /expected key=value/);
  });

  test('machine set with nothing to change exits 2 without contacting the server', async () => {
    const result = await runCli(['machine', 'set', 'm_1', '--server', 'http://127.0.0.1:9']);
    assert.deepEqual(result, {
      code: 2,
      stdout: '',
      stderr: 'muster: nothing to change: give --hostname, --description, --fleet, --no-fleet, --label, --unlabel or --config-file\n',
    });
  });

  test('a page size above 500 exits 2', async () => {
    const result = await runCli(['job', 'ls', '--limit', '501']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /expected a whole number from 1 to 500/);
  });

  test('fleet set without --description exits 2', async () => {
    const result = await runCli(['fleet', 'set', 'pis']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /required option '--description <text>' not specified/);
  });

  test('a token lifetime without a unit exits 2', async () => {
    const result = await runCli(['token', 'create', 'ci', '--expires-in', '90']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /expected a number and a unit, e\.g\. 90d/);
  });

  test('a server that is not a URL exits 2', async () => {
    const result = await runCli(['machine', 'ls', '--server', 'http://exa mple']);
    assert.deepEqual(result, { code: 2, stdout: '', stderr: 'muster: server "http://exa mple" is not a URL like http://127.0.0.1:8080\n' });
  });

  test('a command group given no command prints its help on stderr and exits 2', async () => {
    const result = await runCli(['fleet']);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^Usage: muster fleet \[options\] \[command\]/);
  });

  test('--version prints the version and exits 0', async () => {
    const result = await runCli(['--version']);
    assert.deepEqual(result, { code: 0, stdout: '0.1.0\n', stderr: '' });
  });
});

describe('muster --help', () => {
  const program = buildProgram();
  const groups = [[], ...program.commands.map((c) => [c.name()])];
  const leaves = commandPaths(program).filter((path) => path.length > 1);

  test('muster and every command group print help and exit 0', async () => {
    const results = await Promise.all(groups.map(async (path) => ({ path, result: await runCli([...path, '--help']) })));
    for (const { path, result } of results) {
      assert.equal(result.code, 0, `muster ${path.join(' ')} --help: ${result.stderr}`);
      assert.match(result.stdout, new RegExp(`^Usage: muster${path.map((p) => ` ${p}`).join('')} `), path.join(' '));
      assert.equal(result.stderr, '');
    }
  });

  test('every command prints its help with an exit code of 0', async () => {
    for (const path of leaves) {
      let help = '';
      const tree = buildProgram();
      for (const command of [tree, ...commandTree(tree)]) command.configureOutput({ writeOut: (text) => (help += text) });
      await assert.rejects(tree.parseAsync([...path, '--help'], { from: 'user' }), (error: CommanderError) => error.exitCode === 0);
      assert.match(help, new RegExp(`^Usage: muster ${path.join(' ')} `), path.join(' '));
    }
  });

  test('the command groups the brief names all exist', () => {
    const groups = buildProgram().commands.map((c) => c.name());
    assert.deepEqual(
      groups.sort(),
      [
        'artifact',
        'backup',
        'boot',
        'ca',
        'dnsmasq',
        'endpoint',
        'enrollment-token',
        'explain',
        'fleet',
        'group',
        'job',
        'login',
        'logout',
        'machine',
        'master-key',
        'migrate',
        'pi',
        'profile',
        'rule',
        'serve',
        'sim',
        'stage',
        'token',
        'user',
      ].sort(),
    );
  });

  test('help for a command group exits 0 through `muster help GROUP` too', async () => {
    const result = await runCli(['help', 'machine']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: muster machine/);
  });

  test('a reader that closes the pipe early (muster --help | head) ends muster quietly with 0, not an EPIPE trace', async () => {
    const child = startCli(['--help']);
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE/);
  });
});
