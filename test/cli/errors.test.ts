import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ErrorCode, errorCodes, MusterError } from '@muster/contract';
import { CommanderError } from 'commander';
import { connectionError, responseError } from '../../packages/cli/src/client.ts';
import { describeFailure } from '../../packages/cli/src/failure.ts';
import { runCli } from './cli-process.ts';
import { type FakeServer, problem, startFakeServer } from './fake-server.ts';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('failure → message and exit code', () => {
  test('every error code exits with the code the contract gives it', () => {
    for (const code of Object.keys(errorCodes) as ErrorCode[]) {
      assert.deepEqual(describeFailure(new MusterError(code, 'it failed')), { message: 'it failed', exit: errorCodes[code].exit }, code);
    }
  });

  test('field errors follow the detail, each once', () => {
    const error = new MusterError('validation_failed', 'The request body is not valid: /name must match pattern', {
      errors: [
        { path: '/name', message: 'must match pattern' },
        { path: '/tags/0', message: 'is too long' },
      ],
    });
    assert.deepEqual(describeFailure(error), {
      message: 'The request body is not valid: /name must match pattern (/tags/0: is too long)',
      exit: 2,
    });
  });

  test('a usage error from commander exits 2', () => {
    assert.deepEqual(describeFailure(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")), {
      message: "unknown option '--x'",
      exit: 2,
    });
  });

  test('a problem+json response becomes a MusterError with its code, detail and field errors', async () => {
    const body = {
      type: 'x',
      title: 'Conflict',
      status: 409,
      code: 'illegal_transition',
      detail: 'cannot',
      errors: [{ path: '/to', message: 'no' }],
    };
    const error = await responseError(new Response(JSON.stringify(body), { status: 409 }), 'POST /x');
    assert.deepEqual([error.code, error.message, error.errors], ['illegal_transition', 'cannot', [{ path: '/to', message: 'no' }]]);
  });

  test('an error without a known code is classified by its status', async () => {
    const html = await responseError(
      new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
      'GET /api/v1/machines',
    );
    assert.deepEqual(describeFailure(html), { message: 'GET /api/v1/machines failed: the server answered 502 Bad Gateway', exit: 6 });
    const missing = await responseError(new Response('{"detail":"gone","code":"no_such_code"}', { status: 404 }), 'GET /x');
    assert.deepEqual(describeFailure(missing), { message: 'gone', exit: 3 });
  });

  test('a refused connection names the server and what to check', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.deepEqual(describeFailure(connectionError('http://127.0.0.1:1234', refused)), {
      message: 'cannot reach the server at http://127.0.0.1:1234: is `muster serve` running?',
      exit: 6,
    });
  });
});

describe('muster against a server that refuses', () => {
  let server: FakeServer;

  before(async () => {
    server = await startFakeServer({
      'GET /api/v1/machines/serial%3ANOPE': () => problem(404, 'machine_not_found', 'No machine serial:NOPE'),
      'POST /api/v1/machines/m_1/transition': () =>
        problem(409, 'illegal_transition', 'An enrolled machine cannot become provisioned; allowed: configured, retired'),
      'POST /api/v1/fleets': () =>
        problem(400, 'validation_failed', 'The request body is not valid', [{ path: '/name', message: 'must match pattern' }]),
      'GET /api/v1/users': () => problem(403, 'forbidden', 'Role viewer may not user read; it needs admin or more'),
      'GET /api/v1/tokens': () => problem(401, 'unauthenticated', 'Log in first'),
      'GET /api/v1/jobs': () => problem(401, 'invalid_token', 'The API token is unknown, revoked or expired'),
      'GET /api/v1/fleets': () => ({ status: 503, type: 'text/html', body: '<h1>maintenance</h1>' }),
    });
  });
  after(() => server.close());

  const cases: [string, string[], number, string][] = [
    ['an unknown machine exits 3', ['machine', 'show', 'serial:NOPE'], 3, 'No machine serial:NOPE'],
    [
      'an illegal transition exits 4',
      ['machine', 'transition', 'm_1', 'provisioned'],
      4,
      'An enrolled machine cannot become provisioned; allowed: configured, retired',
    ],
    [
      'a validation failure exits 2 with its field errors',
      ['fleet', 'create', 'bad name'],
      2,
      'The request body is not valid (/name: must match pattern)',
    ],
    ['a forbidden request exits 5', ['user', 'ls', '--token', 'viewer'], 5, 'Role viewer may not user read; it needs admin or more'],
    [
      'a request without a login exits 5 and says to log in',
      ['token', 'ls'],
      5,
      `not logged in to SERVER: run \`muster login\`, or pass --token or MUSTER_TOKEN`,
    ],
    [
      'a refused token exits 5 and says where the token came from',
      ['job', 'ls', '--token', 'old'],
      5,
      'The API token is unknown, revoked or expired; check --token or MUSTER_TOKEN',
    ],
    [
      'a server that is not ready exits 6',
      ['fleet', 'ls', '--token', 't'],
      6,
      'GET /api/v1/fleets failed: the server answered 503 Service Unavailable',
    ],
  ];
  for (const [name, args, code, message] of cases) {
    test(name, async () => {
      const result = await runCli([...args, '--server', server.url]);
      assert.deepEqual(result, { code, stdout: '', stderr: `muster: ${message.replace('SERVER', server.url)}\n` });
    });
  }

  test('connection refused exits 6 with a message naming the server', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await runCli(['machine', 'ls', '--server', url]);
    assert.deepEqual(result, { code: 6, stdout: '', stderr: `muster: cannot reach the server at ${url}: is \`muster serve\` running?\n` });
  });

  test('MUSTER_SERVER is used when --server is not given', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await runCli(['fleet', 'ls'], { env: { MUSTER_SERVER: url } });
    assert.equal(result.code, 6);
    assert.match(result.stderr, new RegExp(`cannot reach the server at ${url}`));
  });

  test('migrate against a database that refuses connections exits 6 and names the option to check', async () => {
    const port = await closedPort();
    const result = await runCli(['migrate', '--database-url', `postgres://muster:secret@127.0.0.1:${port}/muster`]);
    assert.deepEqual(result, {
      code: 6,
      stdout: '',
      stderr: `muster: cannot reach the database at 127.0.0.1:${port} (ECONNREFUSED): check --database-url or DATABASE_URL\n`,
    });
  });
});
