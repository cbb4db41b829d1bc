import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProfileSpec } from '@muster/contract';
import { publicContext } from './render.ts';
import { secretFlowErrors, secretVariables } from './secret-flow.ts';

const machine = {
  machine_id: 'm_1',
  hostname: 'orin-7',
  serial: 'AZJN-0042',
  mac: null,
  hwid: null,
  fleet: 'orin',
  seq: 7,
  labels: {},
  facts: {},
};

describe('secret flow: which variables hold the secret', () => {
  test('a variable is secret when it uses secret, a secret variable or all of vars, transitively', () => {
    const secret = secretVariables({
      plain: '{{ serial | downcase }}',
      direct: '{{ secret | upcase }}',
      filtered: '{{ "x" | append: secret }}',
      tagged: '{% if secret == "" %}none{% endif %}',
      indirect: '{{ vars.direct }}-{{ vars.plain }}',
      bracketed: "{{ vars['indirect'] }}",
      whole: '{{ vars | json }}',
      looped: '{% for v in vars %}{{ v }}{% endfor %}',
      aliased: '{% assign all = vars %}{{ all.direct }}',
      dynamic: '{{ vars[serial] }}',
      captured: '{% capture c %}{{ secret }}{% endcapture %}{{ c | size }}',
      raw: '{% raw %}{{ secret }}{% endraw %}',
      named: '{% assign k = "secret" %}{{ [k] }}',
      named_vars: '{% assign n = "vars" %}{{ [n].pw }}',
      shell_test: '[ -f /etc/{{ serial }} ] && echo "[x]"',
      after_plain: '{{ vars.plain }}',
    });
    assert.deepEqual(Object.fromEntries(secret), {
      direct: 'uses secret',
      filtered: 'uses secret',
      tagged: 'uses secret',
      indirect: 'uses vars.direct, which uses secret',
      bracketed: 'uses vars.indirect, which uses vars.direct, which uses secret',
      whole: 'uses vars, which holds vars.direct, which uses secret',
      looped: 'uses vars, which holds vars.direct, which uses secret',
      aliased: 'uses vars, which holds vars.direct, which uses secret',
      dynamic: 'uses vars, which holds vars.direct, which uses secret',
      captured: 'uses secret',
      named: 'looks up a variable by a name known only when rendering, which may be secret',
      named_vars: 'looks up a variable by a name known only when rendering, which may be secret',
    });
  });

  test('a variable sees only those before it: all of vars before any secret one is not secret', () => {
    const secret = secretVariables({ early: '{{ vars | json }}', later: '{{ vars.key }}', key: '{{ secret }}' });
    assert.deepEqual(Object.fromEntries(secret), { key: 'uses secret' });
  });

  test('a variable that does not parse is kept from readable fields', () => {
    assert.deepEqual(Object.fromEntries(secretVariables({ broken: '{{ serial ' })), { broken: 'does not parse' });
  });
});

describe('secret flow: readable fields', () => {
  test('each readable template that depends on the secret is named with its whole chain; files and hook bodies may use it', () => {
    const spec: ProfileSpec = {
      variables: { b: '{{ secret }}', a: '{{ vars.b }}x', name: '{{ serial }}' },
      hostname: 'h-{{ vars.name }}',
      boot: { ipxe: '#!ipxe\necho {{ secret }}' },
      files: [{ path: 'etc/pw', template: '{{ vars.a }} {{ secret }}' }],
      certificate: { common_name: '{{ vars.a }}', dns_names: ['{{ hostname }}', '{{ vars | json }}'], ip_addresses: ['{{ secret }}'] },
      account: {
        endpoint: 'api',
        create: { method: 'POST', path: '/users/{{ secret | upcase }}', body: { password: '{{ vars.a }}' } },
        update: { method: 'PATCH', path: '/users/{{ vars.name }}', body: { password: '{{ secret }}' } },
      },
      checks: [{ name: 'login', endpoint: 'api', request: { method: 'POST', path: '/login/{{ vars.a }}' } }],
      agent: { commands: ['echo {{ vars.b }}', 'systemctl restart x'] },
    };
    assert.deepEqual(secretFlowErrors(spec), [
      { path: '/boot/ipxe', message: 'uses secret' },
      { path: '/certificate/common_name', message: 'uses vars.a, which uses vars.b, which uses secret' },
      { path: '/certificate/dns_names/1', message: 'uses vars, which holds vars.b, which uses secret' },
      { path: '/certificate/ip_addresses/0', message: 'uses secret' },
      { path: '/account/create/path', message: 'uses secret' },
      { path: '/checks/0/request/path', message: 'uses vars.a, which uses vars.b, which uses secret' },
      { path: '/agent/commands/0', message: 'uses vars.b, which uses secret' },
    ]);
  });

  test('a profile whose secret is used in files and hook bodies only has no errors', () => {
    const spec: ProfileSpec = {
      variables: { pw: '{{ secret }}', email: '{{ serial | downcase }}@example.com' },
      hostname: '{{ vars.email | split: "@" | first }}',
      files: [{ path: 'etc/pw', template: '{{ vars.pw }}' }],
      account: {
        endpoint: 'api',
        create: { method: 'POST', path: '/users', body: { email: '{{ vars.email }}', password: '{{ vars.pw }}' } },
      },
    };
    assert.deepEqual(secretFlowErrors(spec), []);
  });
});

describe('the public context', () => {
  test('has no secret and only the variables that do not use it, rendered without it', async () => {
    const spec: ProfileSpec = {
      variables: { pw: '{{ secret }}', shout: '{{ vars.pw | upcase }}', name: '{{ serial | downcase }}', all: '{{ vars | json }}' },
    };
    const context = await publicContext(spec, { name: 'p', version: 1 }, machine);
    assert.deepEqual(context, { ...machine, machine, profile: { name: 'p', version: 1 }, vars: { name: 'azjn-0042' } });
  });
});
