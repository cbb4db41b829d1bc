import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createMuster } from '../../packages/server/src/app.ts';
import { canonicalSpec } from '../../packages/server/src/modules/profiles/service.ts';
import { insertVersion, nextVersion } from '../../packages/server/src/modules/profiles/store.ts';
import { type AdminApi, startAdminApi } from '../support/admin-api.ts';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.ts';
import { deviceKeys } from '../support/device-keys.ts';
import { testConfig } from '../support/harness.ts';
import { exited, type ServerProcess, spawnServer } from '../support/process.ts';

// Issue 17, finding 3: the machine secret reached a certificate (through a variable) and an event and a log line
// (through a hook path with a filter), because only its exact text was masked. Now fields others read render from
// a context that holds no secret, and `profile apply` refuses one that depends on it, naming the chain.

const leakingCommonName = {
  secret: { bytes: 16 },
  variables: { leak: '{{ secret }}' },
  files: [{ path: 'etc/leak', template: '{{ vars.leak }}' }],
  certificate: { common_name: '{{ vars.leak }}' },
};

const hook = (path: string) => ({
  endpoint: 'admin-api',
  create: { method: 'POST', path, body: { email: 'x@example.com', password: '{{ secret }}', role: 'r' } },
});

/** Uses the secret where it belongs: in the machine's file and in the account hook's body. */
const safeSpec = {
  secret: { bytes: 16 },
  variables: { email: '{{ serial | downcase }}@example.com', password: '{{ secret }}' },
  hostname: 'safe-{{ serial | downcase }}',
  files: [{ path: 'etc/device.conf', mode: '0600', template: 'EMAIL={{ vars.email }}\nPASSWORD={{ vars.password }}\n' }],
  certificate: { common_name: '{{ hostname }}', dns_names: ['{{ hostname }}.example'] },
  account: {
    endpoint: 'admin-api',
    create: { method: 'POST', path: '/users', body: { email: '{{ vars.email }}', password: '{{ vars.password }}', role: 'device' } },
  },
};

/** Both attacks in one version, as a muster from before this check could have stored it. */
const legacySpec = {
  secret: { bytes: 16 },
  variables: { leak: '{{ secret }}' },
  files: [{ path: 'etc/leak', mode: '0600', template: '{{ vars.leak }}' }],
  certificate: { common_name: 'x{{ vars.leak }}', dns_names: ['{{ hostname }}'] },
  account: hook('/users/{{ secret | upcase }}'),
  agent: { commands: ['echo {{ vars.leak | upcase }}'] },
};

for (const kind of databaseKinds) {
  describe(`the machine secret has no path into a readable place [${kind}]`, () => {
    let database: TestDatabase;
    let server: ServerProcess;
    let adminApi: AdminApi;
    let token = '';
    /** Every machine secret the tests saw. */
    const secrets: string[] = [];
    const keys = deviceKeys('secret-flow');

    async function call(method: string, path: string, body?: unknown) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, text, body: text ? JSON.parse(text) : null };
    }

    async function claim(otp: string, role: string, hwid: string) {
      const reply = await call('POST', '/api/v1/claims/otp', { fleet: 'edge', otp, hwid, csr: keys.csr(hwid), facts: { role } });
      assert.equal(reply.status, 201, reply.text);
      return reply.body;
    }

    before(async () => {
      database = await createTestDatabase(kind);
      // The admin, and the legacy version written as an earlier muster would have kept it, before the server runs.
      const muster = await createMuster(testConfig(database));
      try {
        await muster.users.create('test', { username: 'admin', role: 'admin', password: 'correct horse battery' });
        const at = new Date().toISOString();
        const canonical = canonicalSpec(legacySpec as never);
        const { version } = await nextVersion(muster.db.kysely, 'legacy', at);
        await insertVersion(muster.db.kysely, {
          profile: 'legacy',
          version,
          spec: canonical,
          digest: 'legacy',
          actor: 'test',
          comment: '',
          created_at: at,
        });
      } finally {
        await muster.close();
      }
      server = await spawnServer(database.dataDir, { DATABASE_URL: database.databaseUrl, MUSTER_LOG_LEVEL: 'debug' });
      const login = await fetch(`${server.url}/api/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: 'correct horse battery' }),
      });
      token = ((await login.json()) as { token: string }).token;
      adminApi = await startAdminApi();
      assert.equal((await call('PUT', '/api/v1/endpoints/admin-api', { url: adminApi.url })).status, 200);
    });
    after(async () => {
      if (server) {
        server.child.kill('SIGTERM');
        await exited(server.child);
      }
      await adminApi?.close();
      await database?.drop();
    });

    test('a variable holding the secret, used as the certificate common name, is refused at apply with the chain named', async () => {
      const reply = await call('PUT', '/api/v1/profiles/leak', { spec: leakingCommonName });
      assert.equal(reply.status, 400, reply.text);
      assert.equal(reply.body.code, 'validation_failed');
      assert.deepEqual(reply.body.errors, [{ path: '/spec/certificate/common_name', message: 'uses vars.leak, which uses secret' }]);
      assert.equal((await call('GET', '/api/v1/profiles/leak')).status, 404, 'no profile was made');
    });

    test('a hook path using the secret through a filter, or through a chain of variables, is refused at apply', async () => {
      const filtered = await call('PUT', '/api/v1/profiles/hook', {
        spec: { secret: { bytes: 16 }, account: hook('/users/{{ secret | upcase }}') },
      });
      assert.equal(filtered.status, 400, filtered.text);
      assert.deepEqual(filtered.body.errors, [{ path: '/spec/account/create/path', message: 'uses secret' }]);
      const chained = await call('PUT', '/api/v1/profiles/hook', {
        spec: {
          variables: { b: '{{ secret | upcase }}', a: 'u-{{ vars.b }}' },
          hostname: '{{ vars | json | size }}',
          account: hook('/users/{{ vars.a }}'),
        },
      });
      assert.equal(chained.status, 400, chained.text);
      assert.deepEqual(chained.body.errors, [
        { path: '/spec/hostname', message: 'uses vars, which holds vars.b, which uses secret' },
        { path: '/spec/account/create/path', message: 'uses vars.a, which uses vars.b, which uses secret' },
      ]);
      assert.equal((await call('GET', '/api/v1/profiles/hook')).status, 404, 'no profile was made');
    });

    test('a secret variable used only in files and the hook body applies, and the machine and its account get the secret', async () => {
      const applied = await call('PUT', '/api/v1/profiles/safe', { spec: safeSpec });
      assert.equal(applied.status, 200, applied.text);
      const staged = await call('POST', '/api/v1/stage', { serial: 'SAFE-1', profile: 'safe' });
      assert.equal(staged.status, 200, staged.text);
      const password = /PASSWORD=([0-9a-f]{32})\n/.exec(staged.body.files[0].content)?.[1] ?? '';
      assert.ok(password, staged.body.files[0].content);
      secrets.push(password);
      assert.deepEqual([...adminApi.users], [['safe-1@example.com', { password, role: 'device' }]]);
      assert.equal(staged.body.hostname, 'safe-safe-1');
    });

    test('a version stored before the check cannot put the secret into a hook path: the path renders without it', async () => {
      // SAFE-1 keeps its stored secret; the legacy hook path asks for it upper-cased, and gets nothing.
      const staged = await call('POST', '/api/v1/stage', { serial: 'SAFE-1', profile: 'legacy' });
      assert.equal(staged.status, 502, staged.text);
      assert.equal(staged.body.detail, 'The account hook failed, so nothing was staged: POST /users/ on admin-api: answered 404');
      const failed = (await call('GET', '/api/v1/events?type=machine.stage_failed')).body.items;
      assert.deepEqual(
        failed.map((e: { reason: string }) => e.reason),
        ['POST /users/ on admin-api: answered 404'],
      );
    });

    test('claimed machines get the secret in their files only: not in the certificate, the agent commands or explain', async () => {
      assert.equal((await call('POST', '/api/v1/fleets', { name: 'edge' })).status, 201);
      for (const profile of ['safe', 'legacy']) {
        const rule = await call('PUT', `/api/v1/rules/${profile}`, {
          door: 'claim',
          action: 'discover',
          profile,
          facts: { role: profile },
        });
        assert.equal(rule.status, 200, rule.text);
      }
      const slots = (await call('POST', '/api/v1/fleets/edge/slots', { count: 2 })).body.slots;
      const safe = await claim(slots[0].otp, 'safe', 'hw-safe');
      const legacy = await claim(slots[1].otp, 'legacy', 'hw-legacy');
      const safeSecret = /PASSWORD=([0-9a-f]{32})\n/.exec(safe.configuration.files[0].content)?.[1] ?? '';
      const legacySecret = legacy.configuration.files[0].content;
      assert.match(safeSecret, /^[0-9a-f]{32}$/);
      assert.match(legacySecret, /^[0-9a-f]{32}$/);
      secrets.push(safeSecret, legacySecret);

      const names = (pem: string) => {
        const cert = new X509Certificate(pem);
        return { subject: cert.subject, san: cert.subjectAltName };
      };
      assert.deepEqual(names(safe.certificate), { subject: 'CN=edge-1', san: 'DNS:edge-1.example' });
      assert.deepEqual(names(legacy.certificate), { subject: 'CN=x', san: 'DNS:edge-2' });
      assert.deepEqual(legacy.configuration.agent, { commands: ['echo '], services: [] });

      const explained = await call('GET', `/api/v1/machines/${legacy.machine_id}/explain`);
      assert.equal(explained.status, 200, explained.text);
      assert.deepEqual(
        {
          files: explained.body.rendered.files.map((f: { content: string }) => f.content),
          certificate: explained.body.rendered.certificate,
          agent: explained.body.rendered.agent,
        },
        {
          files: ['(secret)'],
          certificate: {
            common_name: 'x',
            dns_names: ['edge-2'],
            ip_addresses: [],
            validity_days: null,
            key_usages: ['digitalSignature', 'keyEncipherment'],
            extended_key_usages: ['clientAuth'],
          },
          agent: { commands: ['echo '], services: [] },
        },
      );
      for (const machine of [safe.machine_id, legacy.machine_id]) {
        const text = (await call('GET', `/api/v1/machines/${machine}/explain`)).text;
        for (const secret of secrets) assert.ok(!text.toLowerCase().includes(secret), 'explain shows no secret');
      }
    });

    test('no event and no line the server logged holds a machine secret, as given or upper-cased', async () => {
      assert.equal(secrets.length, 3);
      const events: unknown[] = [];
      for (let after = 0; ; ) {
        const page = (await call('GET', `/api/v1/events?limit=500&after=${after}`)).body;
        events.push(...page.items);
        after = page.items.at(-1)?.id ?? after;
        if (!page.next_cursor) break;
      }
      const types = new Set(events.map((e) => (e as { type: string }).type));
      for (const type of ['certificate.issued', 'machine.staged', 'machine.stage_failed']) assert.ok(types.has(type), type);
      const eventText = JSON.stringify(events);
      const log = server.output();
      assert.match(log, /request failed/, 'the failed stage was logged');
      for (const secret of secrets)
        for (const form of [secret, secret.toUpperCase()]) {
          assert.ok(!eventText.includes(form), `an event holds ${form === secret ? 'the' : 'the upper-cased'} secret`);
          assert.ok(!log.includes(form), `the log holds ${form === secret ? 'the' : 'the upper-cased'} secret`);
        }
    });
  });
}
