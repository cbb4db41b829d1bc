import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { type CliResult, mainPath, runCli, tempDir } from './cli-process.ts';

interface RunningServe {
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts `muster serve` as an operator would and waits for its "muster is serving" log line. */
async function startServe(dataDir: string): Promise<RunningServe> {
  const child = spawn(process.execPath, [mainPath, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, MUSTER_BUILDER_COMMAND: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (error) => {
      stderr += error.message;
      resolve(null);
    });
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`muster serve did not start in 30 s: ${stderr}`)), 30_000);
    exited.then((code) => reject(new Error(`muster serve exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'muster is serving' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  return { url, child, exited };
}

function json(result: CliResult) {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

describe('muster against a running server', () => {
  const dataDir = tempDir('muster-data-');
  const configDir = tempDir('muster-config-');
  let serve: RunningServe;
  const muster = (args: string[], input?: string) => runCli(args, { env: { MUSTER_CONFIG_DIR: configDir }, input });

  before(async () => {
    const created = await runCli(['user', 'create', 'admin', '--role', 'admin', '--password-stdin', '--data-dir', dataDir, '--json'], {
      input: 'correct horse battery\n',
    });
    assert.deepEqual(
      { ...json(created), id: '', created_at: '', updated_at: '' },
      {
        id: '',
        username: 'admin',
        email: '',
        role: 'admin',
        created_at: '',
        updated_at: '',
        last_login_at: null,
      },
    );
    serve = await startServe(dataDir);
  });

  after(async () => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
  });

  test('commands before login exit 5 and say to log in', async () => {
    const result = await muster(['machine', 'ls', '--server', serve.url]);
    assert.deepEqual(result, {
      code: 5,
      stdout: '',
      stderr: `muster: not logged in to ${serve.url}: run \`muster login\`, or pass --token or MUSTER_TOKEN\n`,
    });
  });

  test('login with the password on stdin stores the session for the next commands', async () => {
    const result = await muster(['login', '--server', serve.url, '--username', 'admin', '--password-stdin'], 'correct horse battery\n');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^Logged in to ${serve.url} as admin \\(admin\\)`));
  });

  test('a machine added to a fleet is named after it and listed', async () => {
    json(await muster(['fleet', 'create', 'pis', '--description', 'Raspberry Pis', '--json']));
    const added = json(
      await muster([
        'machine',
        'add',
        '--id',
        'serial:AZJN-0042',
        '--id',
        'mac:00-11-22-33-44-55',
        '--fleet',
        'pis',
        '--label',
        'rack=r12',
        '--json',
      ]),
    );
    assert.deepEqual([added.hostname, added.fleet, added.labels, added.state], ['pis-1', 'pis', { rack: 'r12' }, 'enrolled']);
    const listed = await muster(['machine', 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^ID +STATE +HOSTNAME +FLEET +SERIAL +MAC +LAST SEEN\n/);
    assert.match(listed.stdout, new RegExp(`${added.id} +enrolled +pis-1 +pis +AZJN-0042 +00:11:22:33:44:55 +never`));
    assert.deepEqual(await muster(['machine', 'ls', '--count', '--label', 'rack=r12']), { code: 0, stdout: '1\n', stderr: '' });
  });

  test('an identifier already taken is a conflict: exit 4', async () => {
    const result = await muster(['machine', 'add', '--id', 'serial:AZJN-0042']);
    assert.equal(result.code, 4);
    assert.match(result.stderr, /^muster: serial:AZJN-0042 already identifies m_/);
  });

  test('labels set and removed by serial keep the others', async () => {
    json(await muster(['machine', 'set', 'serial:AZJN-0042', '--label', 'os=nixos', 'spare=yes', '--json']));
    const changed = json(await muster(['machine', 'set', 'serial:AZJN-0042', '--unlabel', 'spare', '--hostname', 'pi-42', '--json']));
    assert.deepEqual([changed.labels, changed.hostname], [{ rack: 'r12', os: 'nixos' }, 'pi-42']);
  });

  test('a transition the lifecycle allows is made; any other exits 4 naming the allowed ones', async () => {
    const moved = json(await muster(['machine', 'transition', 'serial:AZJN-0042', 'configured', '--reason', 'checked', '--json']));
    assert.equal(moved.state, 'configured');
    const refused = await muster(['machine', 'transition', 'serial:AZJN-0042', 'provisioned']);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /^muster: .*allowed: enrolled, building, retired/);
  });

  test('events show the history, and --follow prints new ones as they happen', { timeout: 30_000 }, async () => {
    const history = json(await muster(['machine', 'events', 'serial:AZJN-0042', '--json']));
    assert.ok(history.some((e: { type: string; reason: string }) => e.type === 'machine.state_changed' && e.reason === 'checked'));
    const follower = spawn(process.execPath, [mainPath, 'machine', 'events', 'serial:AZJN-0042', '--follow', '--json'], {
      env: { ...process.env, MUSTER_CONFIG_DIR: configDir, MUSTER_SERVER: undefined, MUSTER_TOKEN: undefined },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    follower.on('error', (error) => assert.fail(`muster machine events --follow could not start: ${error.message}`));
    try {
      const lines = createInterface({ input: follower.stdout });
      const seen: { type: string; reason: string; id: number }[] = [];
      let triggered = false;
      for await (const line of lines) {
        seen.push(JSON.parse(line));
        if (!triggered && seen.length === history.length) {
          triggered = true;
          json(await muster(['machine', 'transition', 'serial:AZJN-0042', 'enrolled', '--reason', 'followed', '--json']));
        }
        if (seen.at(-1)?.reason === 'followed') break;
      }
      assert.deepEqual(
        seen.map((e) => e.id),
        [...new Set(seen.map((e) => e.id))].sort((a, b) => a - b),
        'each event once, in order',
      );
      assert.equal(seen.at(-1)?.type, 'machine.state_changed');
    } finally {
      follower.kill('SIGINT');
    }
  });

  test('an API token works in MUSTER_TOKEN until it is revoked, then exits 5', async () => {
    const created = json(await muster(['token', 'create', 'ci', '--role', 'viewer', '--expires-in', '1d', '--json']));
    assert.equal(created.role, 'viewer');
    const env = { MUSTER_SERVER: serve.url, MUSTER_TOKEN: created.token };
    assert.deepEqual(await runCli(['machine', 'ls', '--count'], { env }), { code: 0, stdout: '1\n', stderr: '' });
    const forbidden = await runCli(['fleet', 'create', 'nope'], { env });
    assert.equal(forbidden.code, 5);
    assert.equal((await muster(['token', 'revoke', created.id])).code, 0);
    const revoked = await runCli(['machine', 'ls'], { env });
    assert.equal(revoked.code, 5);
    assert.match(revoked.stderr, /; check --token or MUSTER_TOKEN\n$/);
  });

  test('groups collect machines across fleets', async () => {
    json(await muster(['group', 'create', 'canary', '--tag', 'rollout', '--json']));
    const added = await muster(['group', 'add', 'canary', 'serial:AZJN-0042', 'serial:MISSING']);
    assert.deepEqual([added.code, added.stdout], [3, 'added serial:AZJN-0042 to group canary\n']);
    const members = json(await muster(['group', 'machines', 'canary', '--json']));
    assert.deepEqual(
      members.map((m: { hostname: string }) => m.hostname),
      ['pi-42'],
    );
    assert.equal((await muster(['group', 'remove', 'canary', 'serial:AZJN-0042'])).code, 0);
    assert.equal((await muster(['group', 'delete', 'canary'])).code, 0);
    assert.equal((await muster(['group', 'show', 'canary'])).code, 3);
  });

  test('a build is a job whose state and log can be read', async () => {
    json(await muster(['machine', 'transition', 'serial:AZJN-0042', 'configured', '--json']));
    const job = json(await muster(['machine', 'build', 'serial:AZJN-0042', '--json']));
    assert.equal(job.type, 'build');
    let state = job.state;
    for (let i = 0; i < 50 && (state === 'queued' || state === 'running'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      state = json(await muster(['job', 'show', job.id, '--json'])).state;
    }
    assert.equal(state, 'succeeded');
    const log = await muster(['job', 'log', job.id]);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /attempt 1/);
    const jobs = json(await muster(['job', 'ls', '--type', 'build', '--json']));
    assert.ok(jobs.some((j: { id: string }) => j.id === job.id));
  });

  test('user set changes a role; the last admin cannot be deleted', async () => {
    json(
      await runCli(['user', 'create', 'bob', '--role', 'viewer', '--password-stdin', '--data-dir', dataDir, '--json'], {
        input: 'bob password 1',
      }),
    );
    assert.equal(json(await muster(['user', 'set', 'bob', '--role', 'operator', '--json'])).role, 'operator');
    const last = await muster(['user', 'delete', 'admin']);
    assert.equal(last.code, 4);
    assert.equal((await muster(['user', 'delete', 'bob'])).code, 0);
  });

  test('migrate on a current database says it is up to date', async () => {
    const result = await runCli(['migrate', '--data-dir', dataDir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /muster\.db is up to date/);
  });

  test('a second serve on a port in use exits 6 and says what to do', async () => {
    const port = new URL(serve.url).port;
    const result = await runCli(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', tempDir()]);
    assert.equal(result.code, 6);
    assert.match(result.stderr, /already in use; choose another with --listen HOST:PORT\n$/);
  });

  test('after logout commands exit 5 again', async () => {
    assert.equal((await muster(['logout'])).code, 0);
    assert.equal((await muster(['machine', 'ls'])).code, 5);
  });

  test('SIGTERM stops serve cleanly with exit 0', async () => {
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0);
  });
});
