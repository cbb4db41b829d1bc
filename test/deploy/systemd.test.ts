// biome-ignore-all lint/suspicious/noTemplateCurlyInString: systemd spells its variables ${LIKE_THIS}
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from '../cli/cli-process.ts';
import { repoRoot } from '../support/process.ts';
import { testTool } from '../tools/list.ts';

const unitPath = join(repoRoot, 'deploy', 'muster.service');
const launcher = join(repoRoot, 'packages', 'cli', 'bin', 'muster');

/** systemd-analyze verify on a copy of the unit whose ExecStart is this checkout's launcher (it checks that the program exists). */
function verify(text: string): Promise<{ code: number; output: string }> {
  const file = join(tempDir('muster-unit-'), 'muster.service');
  writeFileSync(file, text.replaceAll('/usr/local/bin/muster', launcher));
  return new Promise((resolve) => {
    execFile(testTool('systemd-analyze').path, ['verify', file], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() }),
    );
  });
}

/** The unit's [Service] settings, key to value. */
function settings(text: string): Map<string, string> {
  const service = text.split(/^\[Service\]$/m)[1].split(/^\[/m)[0];
  return new Map(
    service
      .split('\n')
      .filter((line) => /^\w+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

describe('the systemd unit', () => {
  const text = readFileSync(unitPath, 'utf8');

  test('systemd-analyze verify accepts it without a warning', async () => {
    assert.deepEqual(await verify(text), { code: 0, output: '' });
  });

  test('a misspelt key is caught by the same check (so the check above would see one)', async () => {
    const result = await verify(text.replace('ProtectSystem=strict', 'ProtectSystm=strict'));
    assert.match(result.output, /Unknown key 'ProtectSystm'/);
  });

  test('it is hardened: its own user, state directory only, port 69 by capability alone', () => {
    const service = settings(text);
    const expected = {
      DynamicUser: 'yes',
      StateDirectory: 'muster',
      StateDirectoryMode: '0700',
      UMask: '0077',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      NoNewPrivileges: 'yes',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      ExecStart: '/usr/local/bin/muster serve --data-dir ${STATE_DIRECTORY}',
    };
    assert.deepEqual(Object.fromEntries(Object.keys(expected).map((key) => [key, service.get(key)])), expected);
  });
});
