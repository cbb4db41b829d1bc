import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MusterError } from '@muster/contract';
import { dsnToUrl, isLoopbackOnly, loadConfig, parseBytes, parseDuration, parseListen, parseTrustProxy } from './config.ts';

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
