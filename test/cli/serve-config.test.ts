import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../support/process.ts';
import { runCli, tempDir } from './cli-process.ts';

/** True when a TCP port on loopback can be bound, so nothing was left listening on it. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('muster serve refuses a bad configuration at start', () => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['a config file that is not JSON', ['--config', 'FILE:{listen'], {}, /^muster: cannot read config file .*: .*JSON/],
    ['a misspelt key in the config file', ['--config', 'FILE:{"lisen": ":8080"}'], {}, /^muster: config file .*: unknown key "lisen"/],
    [
      'a string where a boolean belongs',
      ['--config', 'FILE:{"enable_auth": "false"}'],
      {},
      /"enable_auth" is "false", which is not true or false/,
    ],
    ['a negative pool size', [], { MUSTER_DB_POOL: '-4' }, /^muster: MUSTER_DB_POOL="-4" is not a whole number from 1 to 1000\n$/],
    ['an enroll rate that is not a number', [], { MUSTER_ENROLL_RATE: 'abc' }, /^muster: MUSTER_ENROLL_RATE="abc" is not a whole number/],
    ['a TFTP address that cannot be parsed', ['--tftp-listen', 'everywhere'], {}, /^muster: --tftp-listen="everywhere" is not HOST:PORT/],
  ];
  for (const [what, args, env, message] of cases) {
    test(`${what}: exit 2, one line, no port bound, no database made`, async () => {
      const dataDir = join(tempDir('muster-serve-config-'), 'data');
      const port = await freePort();
      const argv = args.map((arg) => {
        if (!arg.startsWith('FILE:')) return arg;
        const file = join(tempDir('muster-serve-config-'), 'muster.json');
        writeFileSync(file, arg.slice(5));
        return file;
      });
      const result = await runCli(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...argv], {
        env: { MUSTER_TFTP_LISTEN: '', ...env },
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.equal(existsSync(dataDir), false, 'no data directory, so no migration ran');
      assert.equal(await portFree(port), true);
    });
  }

  test('--print-config shows the effective configuration with secrets masked, and exits', async () => {
    const dataDir = join(tempDir('muster-serve-config-'), 'data');
    const result = await runCli(['serve', '--print-config', '--data-dir', dataDir, '--listen', '127.0.0.1:1'], {
      env: { JWT_SECRET: 'do-not-print-me', MUSTER_TFTP_LISTEN: '127.0.0.1:6969', MUSTER_TFTP_RATE: '0' },
    });
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout);
    assert.deepEqual(
      [printed.listen, printed.dataDir, printed.jwtSecret, printed.tftp.requestRate],
      [{ host: '127.0.0.1', port: 1 }, dataDir, '[set]', null],
    );
    assert.ok(!result.stdout.includes('do-not-print-me'));
    assert.equal(existsSync(dataDir), false);
  });
});
