import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from '../support/harness.ts';
import { runCli, tempDir } from './cli-process.ts';

// `muster ca policy` as an admin uses it, and `muster profile apply` pointing at the lines of a profile the policy
// refuses.

describe('muster ca policy against a real server', () => {
  let h: Harness;
  let env: Record<string, string>;
  const dir = tempDir('muster-ca-policy-');
  const cli = (args: string[], token?: string) => runCli(args, { env: token ? { ...env, MUSTER_TOKEN: token } : env });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const policy = async () => (await h.request('GET', '/api/v1/ca/policy')).body;

  before(async () => {
    h = await startHarness('sqlite');
    env = { MUSTER_SERVER: `http://127.0.0.1:${(h.muster.app.server.address() as AddressInfo).port}`, MUSTER_TOKEN: h.admin };
  });
  after(async () => {
    await h?.muster.close();
    await h?.database.drop();
  });

  test('ca policy shows the defaults; set replaces them from options, and set alone restores them', async () => {
    const shown = await cli(['ca', 'policy']);
    assert.equal(shown.code, 0, shown.stderr);
    const host = new URL(h.config.publicUrl).hostname;
    assert.match(shown.stdout, /^extended key usages: +clientAuth$/m);
    assert.match(shown.stdout, /^dns suffixes: +any name not forbidden$/m);
    assert.match(shown.stdout, new RegExp(`^forbidden names: +localhost, ${host.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(shown.stdout, /^ip ranges: +none but the machine's own pool address$/m);
    assert.match(shown.stdout, /^wildcards: +not allowed$/m);
    assert.match(shown.stdout, /^max validity: +90d \(the certificate_validity setting\)$/m);

    const set = await cli([
      'ca',
      'policy',
      'set',
      '--eku',
      'clientAuth',
      '--dns-suffix',
      '.fleet.example',
      '--ip-range',
      '10.0.0.0/8',
      '--allow-wildcards',
      '--max-validity',
      '30d',
    ]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^dns suffixes: +\.fleet\.example$/m);
    const { updated_at, ...stored } = await policy();
    assert.deepEqual(stored, {
      extended_key_usages: ['clientAuth'],
      key_usages: ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'nonRepudiation'],
      dns_suffixes: ['.fleet.example'],
      forbidden_names: [],
      ip_ranges: ['10.0.0.0/8'],
      allow_wildcards: true,
      max_validity: '30d',
      always_forbidden_names: ['localhost', host],
      max_validity_seconds: 30 * 86_400,
      updated_by: 'user:admin',
    });
    assert.equal(typeof updated_at, 'string');
    const json = await cli(['ca', 'policy', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { updated_at, ...stored });

    assert.equal((await cli(['ca', 'policy', 'set'])).code, 0);
    assert.deepEqual(
      { ...(await policy()), updated_at: null, updated_by: null },
      {
        ...stored,
        dns_suffixes: [],
        ip_ranges: [],
        allow_wildcards: false,
        max_validity: null,
        max_validity_seconds: 90 * 86_400,
        updated_at: null,
        updated_by: null,
      },
    );
  });

  test('set --file takes the policy from YAML', async () => {
    const yaml = file(
      'policy.yaml',
      'extended_key_usages: [clientAuth]\ndns_suffixes:\n  - pis.example\nforbidden_names: [vault.pis.example]\n',
    );
    const set = await cli(['ca', 'policy', 'set', '--file', yaml]);
    assert.equal(set.code, 0, set.stderr);
    const current = await policy();
    assert.deepEqual([current.dns_suffixes, current.forbidden_names], [['pis.example'], ['vault.pis.example']]);
    assert.equal((await cli(['ca', 'policy', 'set'])).code, 0);
  });

  test('bad input exits non-zero with a clear message and changes nothing', async () => {
    const before = await policy();
    const operator = await h.userToken('operator');
    const cases: [string[], number, RegExp, string?][] = [
      [['--eku', 'codeSigning'], 2, /--eku.*expected one of clientAuth, serverAuth/],
      [['--max-validity', '90 days'], 2, /--max-validity.*expected a duration like 90d/],
      [['--ip-range', '10.0.0.1/8'], 2, /\/ip_ranges\/0: 10\.0\.0\.1\/8 has host bits set: did you mean 10\.0\.0\.0\/8\?/],
      [['--ip-range', 'everywhere'], 2, /\/ip_ranges\/0: everywhere is not an IPv4 or IPv6 range/],
      [['--file', file('list.yaml', '- clientAuth\n')], 2, /expected the policy as a mapping/],
      [['--file', file('unknown.yaml', 'colour: blue\n')], 2, /colour/],
      [['--file', join(dir, 'missing.yaml')], 2, /no such file/],
      [['--file', file('both.yaml', '{}\n'), '--eku', 'clientAuth'], 2, /either the file or the options/],
      [['--eku', 'serverAuth'], 5, /Role operator may not ca write; it needs admin/, operator],
    ];
    for (const [args, code, message, token] of cases) {
      const result = await cli(['ca', 'policy', 'set', ...args], token);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
    }
    assert.deepEqual(await policy(), before);
  });

  test('profile apply points at the line of each field the CA policy refuses', async () => {
    const profile = file(
      'server.yaml',
      [
        'name: server',
        'certificate:',
        '  extended_key_usages:',
        '    - serverAuth',
        '  dns_names:',
        '    - localhost',
        '    - "*.example"',
        '  ip_addresses: ["127.0.0.1"]',
        '  validity: 3650d',
        '',
      ].join('\n'),
    );
    const result = await cli(['profile', 'apply', profile]);
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.split('\n').filter((line) => line.startsWith(profile));
    assert.deepEqual(lines, [
      `${profile}:4: /certificate/extended_key_usages/0 serverAuth is not allowed by the CA policy (allowed: clientAuth)`,
      `${profile}:6: /certificate/dns_names/0 localhost is forbidden by the CA policy (localhost)`,
      `${profile}:7: /certificate/dns_names/1 *.example: wildcard names are not allowed by the CA policy`,
      `${profile}:8: /certificate/ip_addresses/0 127.0.0.1 is the address of muster itself (public_url)`,
      `${profile}:9: /certificate/validity 3650d is longer than the CA policy allows (90d)`,
    ]);
    assert.notEqual((await cli(['profile', 'show', 'server'])).code, 0, 'nothing was made');
  });
});
