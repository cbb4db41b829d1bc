import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MusterError } from '@muster/contract';
import { dsnToUrl, isLoopbackOnly, loadConfig, parseBytes, parseDuration, parseListen, parseTrustProxy, printableConfig } from './load.ts';

test('listen addresses: HOST:PORT, :PORT (all interfaces) and [v6]:PORT', () => {
  assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(parseListen('[::1]:9000'), { host: '::1', port: 9000 });
  for (const bad of ['8080', 'host:', 'host:99999', 'a:b']) assert.throws(() => parseListen(bad), MusterError, bad);
});

test('durations in the seed style (24h, 90m, 1h30m) and bare seconds', () => {
  assert.equal(parseDuration('24h'), 86400);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('45'), 45);
  assert.equal(parseDuration('7d'), 604800);
  assert.throws(() => parseDuration('soon'), MusterError);
});

test('the seed DSN form becomes a PostgreSQL URL', () => {
  assert.equal(
    dsnToUrl("host=db.local port=5433 user=me password='s3cret' dbname=metal sslmode=disable"),
    'postgres://me:s3cret@db.local:5433/metal?sslmode=disable',
  );
  assert.equal(dsnToUrl('postgres://x@y/z'), 'postgres://x@y/z');
});

test('flags override environment, environment overrides defaults', () => {
  const env = { LISTEN_ADDR: ':9090', MUSTER_DATA_DIR: '/tmp/env-data', JWT_EXPIRY: '2h' };
  assert.deepEqual(loadConfig({}, env).listen, { host: '0.0.0.0', port: 9090 });
  assert.deepEqual(loadConfig({ listen: '127.0.0.1:1' }, env).listen, { host: '127.0.0.1', port: 1 });
  assert.equal(loadConfig({}, env).jwtExpirySeconds, 7200);
  assert.deepEqual(loadConfig({}, env).database, { dialect: 'sqlite', path: '/tmp/env-data/muster.db' });
  assert.deepEqual(loadConfig({}, {}).listen, { host: '0.0.0.0', port: 8080 });
});

test('the seed database variables select the database', () => {
  assert.deepEqual(loadConfig({}, { DB_DRIVER: 'postgres', DB_DSN: 'host=h user=u dbname=d' }).database, {
    dialect: 'postgres',
    url: 'postgres://u@h/d',
  });
  assert.deepEqual(loadConfig({}, { DB_DRIVER: 'sqlite3', DB_DSN: '/var/lib/m.db' }).database, {
    dialect: 'sqlite',
    path: '/var/lib/m.db',
  });
  assert.deepEqual(loadConfig({}, { DATABASE_URL: 'postgres://a@b/c' }).database, { dialect: 'postgres', url: 'postgres://a@b/c' });
  assert.throws(() => loadConfig({}, { DB_DRIVER: 'mysql' }), MusterError);
});

test('artifacts live under the data dir unless MUSTER_ARTIFACT_DIR says otherwise; the size limit takes units', () => {
  assert.equal(loadConfig({ dataDir: '/srv/m' }, {}).artifactDir, '/srv/m/artifacts');
  assert.equal(loadConfig({ dataDir: '/srv/m' }, { MUSTER_ARTIFACT_DIR: '/nfs/artifacts' }).artifactDir, '/nfs/artifacts');
  assert.equal(loadConfig({}, {}).artifactMaxBytes, 16 * 2 ** 30);
  assert.deepEqual(
    ['1048576', '512M', '512MiB', '2g', '1T'].map((v) => parseBytes('X', v)),
    [2 ** 20, 512 * 2 ** 20, 512 * 2 ** 20, 2 * 2 ** 30, 2 ** 40],
  );
  for (const bad of ['', '0', '-1', '1.5G', '12 parsecs']) assert.throws(() => parseBytes('X', bad), MusterError, bad);
  assert.throws(() => loadConfig({}, { MUSTER_ARTIFACT_MAX_BYTES: 'lots' }), /MUSTER_ARTIFACT_MAX_BYTES="lots"/);
});

test('ENABLE_AUTH accepts true/false spellings and refuses others', () => {
  assert.equal(loadConfig({}, { ENABLE_AUTH: 'false' }).enableAuth, false);
  assert.equal(loadConfig({}, {}).enableAuth, true);
  assert.throws(() => loadConfig({}, { ENABLE_AUTH: 'maybe' }), MusterError);
});

test('loopback-only hosts', () => {
  assert.ok(isLoopbackOnly('127.0.0.1') && isLoopbackOnly('::1') && isLoopbackOnly('localhost') && isLoopbackOnly('127.0.0.2'));
  assert.ok(!isLoopbackOnly('0.0.0.0') && !isLoopbackOnly('::') && !isLoopbackOnly('10.0.0.1'));
});

describe('configuration is checked: a bad value is one line naming it', () => {
  const fileWith = (content: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'muster-config-')), 'muster.json');
    writeFileSync(path, content);
    return path;
  };
  const refused = (flags: Parameters<typeof loadConfig>[0], env: Record<string, string>) => {
    try {
      loadConfig(flags, env);
    } catch (error) {
      assert.ok(error instanceof MusterError);
      return error.message;
    }
    assert.fail('accepted');
  };

  test('numbers that are not numbers, or out of range', () => {
    assert.equal(refused({}, { MUSTER_ENROLL_RATE: 'abc' }), 'MUSTER_ENROLL_RATE="abc" is not a whole number from 0 to 1000000');
    assert.equal(refused({}, { MUSTER_LOGIN_RATE: 'ten' }), 'MUSTER_LOGIN_RATE="ten" is not a whole number from 1 to 1000000');
    assert.equal(refused({}, { MUSTER_DB_POOL: '-1' }), 'MUSTER_DB_POOL="-1" is not a whole number from 1 to 1000');
    assert.equal(refused({}, { MUSTER_DB_POOL: '0' }), 'MUSTER_DB_POOL="0" is not a whole number from 1 to 1000');
    assert.equal(refused({}, { MUSTER_TFTP_WORKERS: '2.5' }), 'MUSTER_TFTP_WORKERS="2.5" is not a whole number from 0 to 64');
    assert.equal(refused({}, { MUSTER_SQLITE_SYNC: 'always' }), 'MUSTER_SQLITE_SYNC="always" is not one of normal, full');
    assert.equal(
      refused({}, { MUSTER_LOG_LEVEL: 'loud' }),
      'MUSTER_LOG_LEVEL="loud" is not one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  test('addresses that cannot be parsed', () => {
    assert.equal(refused({ listen: 'localhost' }, {}), '--listen="localhost" is not HOST:PORT (e.g. 127.0.0.1:8080, :8080 or [::1]:8080)');
    assert.equal(
      refused({}, { MUSTER_TFTP_LISTEN: '0.0.0.0:70000' }),
      'MUSTER_TFTP_LISTEN="0.0.0.0:70000" is not HOST:PORT (e.g. 127.0.0.1:8080, :8080 or [::1]:8080)',
    );
    assert.equal(refused({}, { MUSTER_PUBLIC_URL: 'ftp://x' }), 'MUSTER_PUBLIC_URL="ftp://x" is not an http(s) URL');
  });

  test('a config file: not JSON, an unknown key, a string where a boolean belongs, a negative pool', () => {
    assert.match(refused({ config: fileWith('{listen: 1') }, {}), /^cannot read config file .*muster\.json: /);
    assert.match(refused({ config: fileWith('[]') }, {}), /^config file .*muster\.json is not a JSON object$/);
    assert.match(
      refused({ config: fileWith('{"lisen": ":8080"}') }, {}),
      /^config file .*muster\.json: unknown key "lisen" \(known: listen, /,
    );
    assert.match(
      refused({ config: fileWith('{"enable_auth": "false"}') }, {}),
      /^config file .*: "enable_auth" is "false", which is not true or false \(a JSON boolean, not a string\)$/,
    );
    assert.equal(
      refused({ config: fileWith('{"db_pool": -3}') }, {}).replace(/^.*: /, ''),
      'config file key db_pool="-3" is not a whole number from 1 to 1000',
    );
    assert.match(refused({ config: fileWith('{"listen": 8080}') }, {}), /"listen" is 8080, which is not a string/);
  });

  test('a good config file is read, and flags and environment still win over it', () => {
    const path = fileWith(
      '{"listen": "127.0.0.1:9000", "enable_auth": false, "db_pool": 4, "tftp_rate": 0, "tftp_workers": 1, "log_format": "json"}',
    );
    const config = loadConfig({ config: path }, {});
    assert.deepEqual(
      [config.listen, config.enableAuth, config.dbPoolSize, config.tftp?.requestRate, config.tftp?.workers, config.logFormat],
      [{ host: '127.0.0.1', port: 9000 }, false, 4, null, 1, 'json'],
    );
    assert.equal(loadConfig({ config: path }, { MUSTER_DB_POOL: '7' }).dbPoolSize, 7);
    assert.deepEqual(loadConfig({ config: path, listen: ':1' }, {}).listen, { host: '0.0.0.0', port: 1 });
  });

  test('TFTP tuning reaches the TFTP settings', () => {
    const tftp = loadConfig(
      {},
      {
        MUSTER_TFTP_LISTEN: '127.0.0.1:6969',
        MUSTER_TFTP_RATE: '100',
        MUSTER_TFTP_BURST: '500',
        MUSTER_TFTP_MAX_PER_CLIENT: '200',
        MUSTER_TFTP_MAX_TRANSFERS: '5000',
        MUSTER_TFTP_WORKERS: '1',
        MUSTER_TFTP_FILE_LIMIT: '45',
      },
    ).tftp;
    assert.deepEqual(tftp, {
      host: '127.0.0.1',
      port: 6969,
      fallback: null,
      singlePort: false,
      workers: 1,
      requestRate: { perSecond: 100, burst: 500 },
      maxPerClient: 200,
      maxTransfers: 5000,
      fileLimitSeconds: 45,
    });
    assert.equal(loadConfig({}, { MUSTER_TFTP_FILE_LIMIT: '0' }).tftp?.fileLimitSeconds, null, '0 turns admission off');
  });

  test('--print-config masks the session secret and the database password', () => {
    const config = loadConfig({}, { JWT_SECRET: 'very-secret', DATABASE_URL: 'postgres://muster:hunter2@db/muster' });
    const printed = JSON.stringify(printableConfig(config));
    assert.ok(!printed.includes('very-secret') && !printed.includes('hunter2'), printed);
    assert.deepEqual(JSON.parse(printed).database, { dialect: 'postgres', url: 'postgres://muster:*****@db/muster' });
    assert.equal(JSON.parse(printed).jwtSecret, '[set]');
  });
});

test('trusted proxies: addresses, CIDRs and proxy-addr names, from a flag list, the environment or a config file array', () => {
  assert.deepEqual(parseTrustProxy('10.0.0.5, 10.1.0.0/16 ::1,fd00::/8 loopback'), [
    '10.0.0.5',
    '10.1.0.0/16',
    '::1',
    'fd00::/8',
    'loopback',
  ]);
  assert.deepEqual(parseTrustProxy(['192.0.2.1', '198.51.100.0/24']), ['192.0.2.1', '198.51.100.0/24']);
  assert.deepEqual(parseTrustProxy(undefined), []);
  assert.deepEqual(loadConfig({}, {}).trustProxy, [], 'nobody is trusted by default');
  assert.deepEqual(loadConfig({ trustProxy: '127.0.0.1' }, { MUSTER_TRUST_PROXY: '10.0.0.1' }).trustProxy, ['127.0.0.1']);
  for (const bad of ['proxy.example', '10.0.0.0/33', '::1/129', '10.0.0.1/8/1', '10.0.0', '10.0.0.0/x']) {
    assert.throws(
      () => parseTrustProxy(bad),
      (e: MusterError) => e.code === 'bad_request' && e.message.includes(`"${bad}"`),
      bad,
    );
  }
});

test('door limits and retention: defaults, off, and bad values refused', () => {
  const defaults = loadConfig({}, {});
  assert.deepEqual(
    {
      enroll: defaults.enrollRatePerMinute,
      boot: defaults.bootRate,
      discovery: defaults.discoveryPerMinute,
      facts: defaults.factsMaxBytes,
      retention: defaults.retention,
    },
    {
      enroll: 600,
      boot: { perMinute: 600, burst: 400 },
      discovery: 1000,
      facts: 16384,
      retention: { bootRequestsSeconds: 30 * 86400, eventsSeconds: 90 * 86400 },
    },
  );
  const off = loadConfig({}, { MUSTER_DISCOVERY_RATE: '0', MUSTER_RETENTION_EVENTS: 'off', MUSTER_RETENTION_BOOT_REQUESTS: '12h' });
  assert.deepEqual([off.discoveryPerMinute, off.retention], [0, { bootRequestsSeconds: 43200, eventsSeconds: 0 }]);
  for (const env of [
    { MUSTER_ENROLL_RATE: 'abc' },
    { MUSTER_BOOT_RATE: '-1' },
    { MUSTER_BOOT_BURST: '1.5' },
    { MUSTER_DISCOVERY_RATE: 'lots' },
    { MUSTER_FACTS_MAX_BYTES: 'big' },
    { MUSTER_RETENTION_EVENTS: 'soon' },
  ]) {
    assert.throws(() => loadConfig({}, env), MusterError, JSON.stringify(env));
  }
});

test('render threads: defaults, the time limit in ms or seconds from the environment or a file, and bad values refused', () => {
  const defaults = loadConfig({}, {});
  assert.deepEqual(
    [defaults.render, defaults.bootRenders],
    [
      { threads: Math.min(availableParallelism(), 2), timeoutMs: 1000, maxQueued: 1024 },
      { running: 2, waiting: 64 },
    ],
  );
  const given = loadConfig(
    {},
    {
      MUSTER_RENDER_THREADS: '3',
      MUSTER_RENDER_TIMEOUT: '250ms',
      MUSTER_RENDER_QUEUE: '10',
      MUSTER_BOOT_RENDERS_PER_SOURCE: '4',
      MUSTER_BOOT_RENDERS_WAITING: '0',
    },
  );
  assert.deepEqual(
    [given.render, given.bootRenders],
    [
      { threads: 3, timeoutMs: 250, maxQueued: 10 },
      { running: 4, waiting: 0 },
    ],
  );
  const dir = mkdtempSync(join(tmpdir(), 'muster-config-'));
  writeFileSync(join(dir, 'muster.json'), '{"render_timeout": "2s", "render_threads": 1}');
  assert.deepEqual(loadConfig({ config: join(dir, 'muster.json') }, {}).render, { threads: 1, timeoutMs: 2000, maxQueued: 1024 });
  const refusals = [
    [{ MUSTER_RENDER_TIMEOUT: '5ms' }, 'MUSTER_RENDER_TIMEOUT="5ms" is not from 10ms to 60s'],
    [{ MUSTER_RENDER_TIMEOUT: '2m' }, 'MUSTER_RENDER_TIMEOUT="2m" is not from 10ms to 60s'],
    [{ MUSTER_RENDER_TIMEOUT: 'soon' }, 'MUSTER_RENDER_TIMEOUT="soon" is not a duration like 24h, 30m or 7d'],
    [{ MUSTER_RENDER_THREADS: '0' }, 'MUSTER_RENDER_THREADS="0" is not a whole number from 1 to 64'],
    [{ MUSTER_RENDER_QUEUE: '0' }, 'MUSTER_RENDER_QUEUE="0" is not a whole number from 1 to 100000'],
    [{ MUSTER_BOOT_RENDERS_PER_SOURCE: 'x' }, 'MUSTER_BOOT_RENDERS_PER_SOURCE="x" is not a whole number from 1 to 1000'],
    [{ MUSTER_BOOT_RENDERS_WAITING: '-1' }, 'MUSTER_BOOT_RENDERS_WAITING="-1" is not a whole number from 0 to 100000'],
  ] as const;
  for (const [env, message] of refusals) assert.throws(() => loadConfig({}, env), { name: 'MusterError', message });
});
