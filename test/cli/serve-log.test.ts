import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../support/databases.ts';
import { enrollBody } from '../support/harness.ts';
import { exited, spawnServer } from '../support/process.ts';
import { runCli } from './cli-process.ts';

/** Runs a server with `env`, enrolls one machine and probes /healthz, and returns what it printed. */
async function serverOutput(env: Record<string, string>): Promise<string> {
  const database = await createTestDatabase('sqlite');
  const server = await spawnServer(database.dataDir, { MUSTER_LOG_LEVEL: 'info', ...env });
  try {
    const enrolled = await fetch(`${server.url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(enrollBody(1)),
    });
    assert.equal(enrolled.status, 201);
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/api/v1/machines`)).status, 401);
  } finally {
    server.child.kill('SIGTERM');
    await exited(server.child);
    await database.drop();
  }
  return server.output();
}

describe('what muster serve logs', () => {
  test('JSON when not on a terminal: ISO times, a line per enrollment, no access lines for health probes', async () => {
    const output = await serverOutput({});
    const entries = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line));
    assert.ok(entries.length > 0);
    for (const entry of entries) assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const messages = entries.map((entry) => entry.msg);
    assert.ok(messages.includes('machine enrolled'), messages.join(', '));
    assert.deepEqual(
      entries.filter((entry) => entry.msg === 'request').map((entry) => [entry.route, entry.status]),
      [
        ['/api/v1/enroll', 201],
        ['/api/v1/machines', 401],
      ],
    );
  });

  test('--log-format pretty (MUSTER_LOG_FORMAT): one readable line per entry with its time', async () => {
    const output = await serverOutput({ MUSTER_LOG_FORMAT: 'pretty' });
    const enrolled = output.split('\n').find((line) => line.includes('machine enrolled'));
    assert.match(
      enrolled ?? output,
      /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] INFO: machine enrolled \{"machine":"m_[a-z0-9]+","source":"127\.0\.0\.1"\}$/,
    );
  });

  test('an unknown log format stops serve at start with exit 2, naming it', async () => {
    const result = await runCli(['serve', '--listen', '127.0.0.1:0', '--data-dir', '/nonexistent-muster', '--log-format', 'xml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--log-format.*xml/);
    const byEnv = await runCli(['serve', '--listen', '127.0.0.1:0', '--data-dir', '/nonexistent-muster'], {
      env: { MUSTER_LOG_FORMAT: 'xml' },
    });
    assert.equal(byEnv.code, 2);
    assert.equal(byEnv.stderr, 'muster: MUSTER_LOG_FORMAT="xml" is not one of pretty, json\n');
  });
});
