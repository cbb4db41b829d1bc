import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../support/harness.ts';
import { runCli, tempDir } from './cli-process.ts';

// The profile commands as an operator uses them: a YAML file applied, shown, changed, diffed, rolled back, and a
// machine explained before and after it exists.

const jetsonYaml = `# seed 002's device, as a muster profile
name: jetson
description: Jetson Orin companions
variables:
  suffix: "{{ serial | split: '-' | last | downcase }}"
hostname: jetson-{{ vars.suffix }}
files:
  - path: etc/azaion/device.conf
    mode: "0600"
    template: |
      AZAION_DEVICE_EMAIL=azaion-jetson-{{ vars.suffix }}@azaion.com
      AZAION_DEVICE_PASSWORD={{ secret }}
`;

describe('muster profile and muster explain against a real server', () => {
  let h: Harness;
  let env: Record<string, string>;
  const dir = tempDir('muster-profiles-');
  const cli = (args: string[]) => runCli(args, { env });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(async () => {
    h = await startHarness('sqlite');
    env = { MUSTER_SERVER: `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`, MUSTER_TOKEN: h.admin };
  });
  after(async () => {
    await h?.muster.close();
    await h?.database.drop();
  });

  test('apply, apply again unchanged, change, history, diff, show and rollback', async () => {
    const v1 = file('jetson.yaml', jetsonYaml);
    const applied = await cli(['profile', 'apply', v1, '--comment', 'first']);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /profile jetson is at version 1/);
    assert.match((await cli(['profile', 'apply', v1])).stdout, /unchanged: version 1/);
    const v2 = file('jetson2.yaml', jetsonYaml.replace('hostname: jetson-', 'hostname: orin-'));
    const diffFile = await cli(['profile', 'diff', 'jetson', v2]);
    assert.equal(diffFile.code, 0, diffFile.stderr);
    assert.match(diffFile.stdout, /^-hostname: jetson-\{\{ vars.suffix \}\}$/m);
    assert.match(diffFile.stdout, /^\+hostname: orin-\{\{ vars.suffix \}\}$/m);
    assert.match((await cli(['profile', 'apply', v2])).stdout, /version 2/);
    const history = await cli(['profile', 'history', 'jetson']);
    assert.match(history.stdout, /^2 .*\n1 .* first$/m);
    const diff = await cli(['profile', 'diff', 'jetson']);
    assert.match(diff.stdout, /--- jetson v1\n\+\+\+ jetson v2/);
    const shown = await cli(['profile', 'show', 'jetson', '1']);
    assert.match(shown.stdout, /^hostname: jetson-\{\{ vars.suffix \}\}$/m);
    assert.match(shown.stdout, /mode: "0600"|mode: '0600'/);
    const back = await cli(['profile', 'rollback', 'jetson', '1']);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /version 3, the same as version 1/);
    assert.match((await cli(['profile', 'ls'])).stdout, /^jetson +3 +0 /m);
  });

  test('a bad profile file is refused with the line of each error, and makes no version', async () => {
    const bad = file('bad.yaml', 'name: broken\nhostname: x\nfiles:\n  - path: etc/x\n    mode: "999"\n    template: hi\ncolour: blue\n');
    const result = await cli(['profile', 'apply', bad]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /bad\.yaml:5: \/files\/0\/mode /);
    assert.match(result.stderr, /bad\.yaml:7: \/colour unknown field/);
    const syntax = file('syntax.yaml', 'name: broken\nfiles: [\n');
    const parsed = await cli(['profile', 'apply', syntax]);
    assert.equal(parsed.code, 2);
    assert.match(parsed.stderr, /syntax\.yaml:\d+:/);
    assert.notEqual((await cli(['profile', 'show', 'broken'])).code, 0, 'nothing was made');
  });

  test('a profile whose readable fields depend on the secret is refused with the line and chain of each, and makes nothing', async () => {
    const leak = file(
      'leak.yaml',
      [
        'name: leak',
        'variables:',
        '  leak: "{{ secret }}"',
        '  b: "{{ secret | upcase }}"',
        '  a: "{{ vars.b }}"',
        'files:',
        '  - path: etc/leak',
        '    template: "{{ vars.leak }}"',
        'certificate:',
        '  common_name: "{{ vars.leak }}"',
        'agent:',
        '  commands:',
        '    - "echo {{ vars.a }}"',
        '',
      ].join('\n'),
    );
    const result = await cli(['profile', 'apply', leak]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      `${leak}:10: /certificate/common_name uses vars.leak, which uses secret\n` +
        `${leak}:13: /agent/commands/0 uses vars.a, which uses vars.b, which uses secret\n` +
        `muster: ${leak} is not a valid profile (2 errors above)\n`,
    );
    assert.notEqual((await cli(['profile', 'show', 'leak'])).code, 0, 'nothing was made');
  });

  test('explain a machine from a facts file before it exists, with the rule that would place it', async () => {
    assert.equal((await cli(['fleet', 'create', 'orin'])).code, 0);
    const rule = await cli([
      'rule',
      'set',
      'jetsons',
      '--door',
      'enroll',
      '--fact',
      'product=Jetson*',
      '--action',
      'discover',
      '--fleet',
      'orin',
      '--profile',
      'jetson',
    ]);
    assert.equal(rule.code, 0, rule.stderr);
    const facts = file('orin.yaml', 'product: Jetson Orin Nano\nmemory_gb: 8\n');
    const explained = await cli(['explain', '--facts', facts, '--serial', 'AZJN-0042']);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /^rule: +jetsons$/m);
    assert.match(explained.stdout, /^hostname: +jetson-0042$/m);
    assert.match(
      explained.stdout,
      /File etc\/azaion\/device.conf \(mode 0600, owner root:root\):\n {2}\| AZAION_DEVICE_EMAIL=azaion-jetson-0042@azaion.com\n {2}\| AZAION_DEVICE_PASSWORD=\(secret\)/,
    );
    const other = await cli(['explain', '--facts', file('dell.yaml', 'product: PowerEdge R640\n'), '--serial', 'ABC1234']);
    assert.match(other.stdout, /- jetsons .*fact product is "PowerEdge R640", not Jetson\*/);
    assert.equal((await cli(['explain'])).code, 2, 'neither a machine nor facts is a usage error');
  });
});
