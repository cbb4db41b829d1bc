import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { before, test } from 'node:test';
import { type Role, roleCovers } from '@muster/contract';
import { eachDatabase, enrollBody, type Reply, waitForJob } from '../support/harness.ts';
import { answered, assertProblem, publicOperations } from './assertions.ts';

type Caller = 'anonymous' | Role;
const callers: Caller[] = ['anonymous', 'viewer', 'operator', 'admin'];
const password = 'correct horse battery';

/** A request as one caller sends it; built per caller so that writes never collide. */
interface Request {
  url: string;
  body?: unknown;
}

interface Route {
  method: string;
  path: string;
  /** The least role that may call it, or public (no token needed). */
  least: Role | 'public';
  build(caller: Caller, token: string | null): Promise<Request> | Request;
}

function expected(route: Route, caller: Caller): 'allowed' | 401 | 403 {
  if (route.least === 'public') return 'allowed';
  if (caller === 'anonymous') return 401;
  return roleCovers(caller, route.least) ? 'allowed' : 403;
}

function outcome(reply: Reply): 'allowed' | 401 | 403 {
  return reply.status === 401 || reply.status === 403 ? reply.status : 'allowed';
}

eachDatabase('Who may call what', (h) => {
  const tokens: Record<Caller, string | null> = { anonymous: null, viewer: null, operator: null, admin: null };
  let machineId: string;
  let jobId: string;
  let groupId: string;
  let serial = 0;
  const unique = () => ++serial;

  const newMachine = async (state: 'enrolled' | 'configured' = 'enrolled') => {
    const n = 1000 + unique();
    const machine = (await h().request('POST', '/api/v1/enroll', { token: null, body: enrollBody(n) })).body;
    if (state === 'configured') await h().request('PUT', `/api/v1/machines/${machine.id}`, { body: { nixos_config: '{ }' } });
    return machine.id as string;
  };
  const newUser = async () => {
    const reply = await h().request('POST', '/api/v1/users', { body: { username: `target${unique()}`, password, role: 'viewer' } });
    assert.equal(reply.status, 201);
    return reply.body.id as string;
  };
  const newFleet = async () => (await h().request('POST', '/api/v1/fleets', { body: { name: `doomed${unique()}` } })).body.name as string;
  const newRule = async () => {
    const name = `rule${unique()}`;
    await h().request('PUT', `/api/v1/rules/${name}`, { body: { action: 'ignore', serial_pattern: 'fffe*' } });
    return name;
  };
  const newProfile = async () => {
    const name = `profile${unique()}`;
    await h().request('PUT', `/api/v1/profiles/${name}`, { body: { spec: { hostname: 'p-{{ serial }}' } } });
    return name;
  };
  const newEndpoint = async () => {
    const name = `endpoint${unique()}`;
    await h().request('PUT', `/api/v1/endpoints/${name}`, { body: { url: 'http://127.0.0.1:9' } });
    return name;
  };
  const newGroup = async () => (await h().request('POST', '/api/v1/groups', { body: { name: `doomed${unique()}` } })).body.id as string;
  const newArtifact = async () =>
    (await h().muster.artifacts.addStream('user:admin', Readable.from([Buffer.from(`artifact ${unique()}`)]))).artifact.sha256;
  const newName = async () => {
    const name = `roles/name${unique()}`;
    await h().muster.artifacts.publish('user:admin', name, await newArtifact());
    return encodeURIComponent(name);
  };

  before(async () => {
    tokens.viewer = await h().userToken('viewer', 'vic');
    tokens.operator = await h().userToken('operator', 'olga');
    tokens.admin = h().admin;
    machineId = await newMachine();
    await h().request('POST', '/api/v1/fleets', { body: { name: 'fixed' } });
    groupId = (await h().request('POST', '/api/v1/groups', { body: { name: 'fixed' } })).body.id;
    const build = await h().request('POST', `/api/v1/machines/${await newMachine('configured')}/build`);
    jobId = (await waitForJob(h, build.body.id)).id;
  });

  const routes: Route[] = [
    { method: 'GET', path: '/healthz', least: 'public', build: () => ({ url: '/healthz' }) },
    { method: 'GET', path: '/readyz', least: 'public', build: () => ({ url: '/readyz' }) },
    { method: 'GET', path: '/metrics', least: 'public', build: () => ({ url: '/metrics' }) },
    { method: 'GET', path: '/api/v1/metrics', least: 'public', build: () => ({ url: '/api/v1/metrics' }) },
    { method: 'GET', path: '/api/v1/openapi.json', least: 'public', build: () => ({ url: '/api/v1/openapi.json' }) },
    { method: 'GET', path: '/api/docs', least: 'public', build: () => ({ url: '/api/docs' }) },
    {
      method: 'POST',
      path: '/api/v1/enroll',
      least: 'public',
      build: () => ({ url: '/api/v1/enroll', body: enrollBody(5000 + unique()) }),
    },
    {
      method: 'POST',
      path: '/api/v1/login',
      least: 'public',
      build: () => ({ url: '/api/v1/login', body: { username: 'vic', password } }),
    },
    { method: 'GET', path: '/api/v1/me', least: 'viewer', build: () => ({ url: '/api/v1/me' }) },

    { method: 'GET', path: '/api/v1/machines', least: 'viewer', build: () => ({ url: '/api/v1/machines' }) },
    { method: 'GET', path: '/api/v1/machines/{id}', least: 'viewer', build: () => ({ url: `/api/v1/machines/${machineId}` }) },
    {
      method: 'GET',
      path: '/api/v1/machines/{id}/events',
      least: 'viewer',
      build: () => ({ url: `/api/v1/machines/${machineId}/events` }),
    },
    {
      method: 'POST',
      path: '/api/v1/machines',
      least: 'operator',
      build: () => ({ url: '/api/v1/machines', body: { identifiers: [{ kind: 'serial', value: `HAND${unique()}` }] } }),
    },
    {
      method: 'PUT',
      path: '/api/v1/machines/{id}',
      least: 'operator',
      build: (caller) => ({ url: `/api/v1/machines/${machineId}`, body: { description: `set by ${caller}` } }),
    },
    {
      method: 'PATCH',
      path: '/api/v1/machines/{id}',
      least: 'operator',
      build: (caller) => ({ url: `/api/v1/machines/${machineId}`, body: { description: `patched by ${caller}` } }),
    },
    {
      method: 'POST',
      path: '/api/v1/machines/{id}/transition',
      least: 'operator',
      build: async () => ({ url: `/api/v1/machines/${await newMachine()}/transition`, body: { to: 'configured' } }),
    },
    {
      method: 'POST',
      path: '/api/v1/machines/{id}/identifiers',
      least: 'operator',
      build: () => ({ url: `/api/v1/machines/${machineId}/identifiers`, body: { kind: 'asset', value: `ASSET${unique()}` } }),
    },
    {
      method: 'POST',
      path: '/api/v1/machines/{id}/build',
      least: 'operator',
      build: async () => ({ url: `/api/v1/machines/${await newMachine('configured')}/build` }),
    },

    { method: 'GET', path: '/api/v1/fleets', least: 'viewer', build: () => ({ url: '/api/v1/fleets' }) },
    { method: 'GET', path: '/api/v1/fleets/{id}/slots', least: 'viewer', build: () => ({ url: '/api/v1/fleets/fixed/slots' }) },
    {
      method: 'POST',
      path: '/api/v1/fleets/{id}/slots',
      least: 'operator',
      build: () => ({ url: '/api/v1/fleets/fixed/slots', body: { count: 1 } }),
    },
    {
      method: 'POST',
      path: '/api/v1/claims/otp',
      least: 'public',
      build: async () => {
        const [slot] = (await h().request('POST', '/api/v1/fleets/fixed/slots', { body: { count: 1 } })).body.slots;
        return { url: '/api/v1/claims/otp', body: { fleet: 'fixed', otp: slot.otp, hwid: `ROLES-${unique()}` } };
      },
    },
    { method: 'GET', path: '/api/v1/ca', least: 'public', build: () => ({ url: '/api/v1/ca' }) },
    {
      method: 'PUT',
      path: '/api/v1/fleets/{id}/ip-pool',
      least: 'operator',
      build: () => ({ url: '/api/v1/fleets/fixed/ip-pool', body: { cidr: '10.77.0.0/24' } }),
    },
    { method: 'GET', path: '/api/v1/fleets/{id}/ip-pool', least: 'viewer', build: () => ({ url: '/api/v1/fleets/fixed/ip-pool' }) },
    { method: 'GET', path: '/api/v1/enrollment-tokens', least: 'viewer', build: () => ({ url: '/api/v1/enrollment-tokens' }) },
    {
      method: 'POST',
      path: '/api/v1/enrollment-tokens',
      least: 'operator',
      build: () => ({ url: '/api/v1/enrollment-tokens', body: { name: `et${unique()}` } }),
    },
    {
      method: 'POST',
      path: '/api/v1/enrollment-tokens/{name}/revoke',
      least: 'operator',
      build: async () => {
        const name = `etr${unique()}`;
        await h().request('POST', '/api/v1/enrollment-tokens', { body: { name } });
        return { url: `/api/v1/enrollment-tokens/${name}/revoke` };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/claims/token',
      least: 'public',
      build: async () => {
        const { token } = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: `etc${unique()}` } })).body;
        return { url: '/api/v1/claims/token', body: { token, hwid: `ROLES-T-${unique()}` } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/machines/{id}/approve',
      least: 'operator',
      build: async () => {
        const { token } = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: `eta${unique()}` } })).body;
        const pending = await h().request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid: `ROLES-A-${unique()}` } });
        return { url: `/api/v1/machines/${pending.body.machine_id}/approve` };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/machines/{id}/reject',
      least: 'operator',
      build: async () => {
        const { token } = (await h().request('POST', '/api/v1/enrollment-tokens', { body: { name: `etj${unique()}` } })).body;
        const pending = await h().request('POST', '/api/v1/claims/token', { token: null, body: { token, hwid: `ROLES-J-${unique()}` } });
        return { url: `/api/v1/machines/${pending.body.machine_id}/reject`, body: {} };
      },
    },
    { method: 'GET', path: '/api/v1/ca/crl', least: 'public', build: () => ({ url: '/api/v1/ca/crl' }) },
    {
      method: 'GET',
      path: '/api/v1/machines/{id}/certificates',
      least: 'viewer',
      build: () => ({ url: `/api/v1/machines/${machineId}/certificates` }),
    },
    {
      method: 'POST',
      path: '/api/v1/certificates/{serial}/revoke',
      least: 'operator',
      build: () => ({ url: '/api/v1/certificates/abcdef/revoke', body: {} }),
    },
    { method: 'GET', path: '/api/v1/fleets/{id}', least: 'viewer', build: () => ({ url: '/api/v1/fleets/fixed' }) },
    {
      method: 'POST',
      path: '/api/v1/fleets',
      least: 'operator',
      build: () => ({ url: '/api/v1/fleets', body: { name: `fleet${unique()}` } }),
    },
    {
      method: 'PUT',
      path: '/api/v1/fleets/{id}',
      least: 'operator',
      build: (caller) => ({ url: '/api/v1/fleets/fixed', body: { description: caller } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/fleets/{id}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/fleets/${await newFleet()}` }),
    },

    { method: 'GET', path: '/api/v1/groups', least: 'viewer', build: () => ({ url: '/api/v1/groups' }) },
    { method: 'GET', path: '/api/v1/groups/{id}', least: 'viewer', build: () => ({ url: `/api/v1/groups/${groupId}` }) },
    { method: 'GET', path: '/api/v1/groups/{id}/machines', least: 'viewer', build: () => ({ url: `/api/v1/groups/${groupId}/machines` }) },
    {
      method: 'POST',
      path: '/api/v1/groups',
      least: 'operator',
      build: () => ({ url: '/api/v1/groups', body: { name: `group${unique()}` } }),
    },
    {
      method: 'PUT',
      path: '/api/v1/groups/{id}',
      least: 'operator',
      build: (caller) => ({ url: `/api/v1/groups/${groupId}`, body: { description: caller } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/groups/{id}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/groups/${await newGroup()}` }),
    },
    {
      method: 'PUT',
      path: '/api/v1/groups/{id}/machines/{machineId}',
      least: 'operator',
      build: () => ({ url: `/api/v1/groups/${groupId}/machines/${machineId}` }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/groups/{id}/machines/{machineId}',
      least: 'operator',
      build: () => ({ url: `/api/v1/groups/${groupId}/machines/${machineId}` }),
    },

    {
      method: 'POST',
      path: '/api/v1/bulk',
      least: 'operator',
      build: (caller) => ({
        url: '/api/v1/bulk',
        body: { machine_ids: [machineId], operation: 'update', data: { description: `bulk by ${caller}` } },
      }),
    },

    { method: 'GET', path: '/api/v1/jobs', least: 'viewer', build: () => ({ url: '/api/v1/jobs' }) },
    { method: 'GET', path: '/api/v1/jobs/{id}', least: 'viewer', build: () => ({ url: `/api/v1/jobs/${jobId}` }) },
    { method: 'GET', path: '/api/v1/jobs/{id}/log', least: 'viewer', build: () => ({ url: `/api/v1/jobs/${jobId}/log` }) },
    { method: 'POST', path: '/api/v1/jobs/{id}/cancel', least: 'operator', build: () => ({ url: `/api/v1/jobs/${jobId}/cancel` }) },

    { method: 'GET', path: '/api/v1/events', least: 'viewer', build: () => ({ url: '/api/v1/events' }) },

    { method: 'GET', path: '/api/v1/artifacts', least: 'viewer', build: () => ({ url: '/api/v1/artifacts' }) },
    // A JSON body: callers past the role check hear 415, which is all this table needs (uploads: artifacts.test.ts).
    { method: 'POST', path: '/api/v1/artifacts', least: 'operator', build: () => ({ url: '/api/v1/artifacts', body: {} }) },
    {
      method: 'GET',
      path: '/api/v1/artifacts/{sha256}',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/artifacts/${await newArtifact()}` }),
    },
    {
      method: 'GET',
      path: '/api/v1/artifacts/{sha256}/content',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/artifacts/${await newArtifact()}/content` }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/artifacts/{sha256}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/artifacts/${await newArtifact()}` }),
    },
    { method: 'GET', path: '/api/v1/artifact-names', least: 'viewer', build: () => ({ url: '/api/v1/artifact-names' }) },
    {
      method: 'GET',
      path: '/api/v1/artifact-names/{name}',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/artifact-names/${await newName()}` }),
    },
    {
      method: 'PUT',
      path: '/api/v1/artifact-names/{name}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/artifact-names/roles%2Fput${unique()}`, body: { sha256: await newArtifact() } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/artifact-names/{name}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/artifact-names/${await newName()}` }),
    },

    { method: 'GET', path: '/api/v1/rules', least: 'viewer', build: () => ({ url: '/api/v1/rules' }) },
    { method: 'GET', path: '/api/v1/rules/{name}', least: 'viewer', build: async () => ({ url: `/api/v1/rules/${await newRule()}` }) },
    {
      method: 'PUT',
      path: '/api/v1/rules/{name}',
      least: 'operator',
      build: () => ({ url: `/api/v1/rules/made${unique()}`, body: { action: 'ignore', serial_pattern: 'ffff*' } }),
    },
    { method: 'DELETE', path: '/api/v1/rules/{name}', least: 'operator', build: async () => ({ url: `/api/v1/rules/${await newRule()}` }) },
    // A body that is no CA: the admin's call is refused as bad input, and the CA every other test uses stays.
    { method: 'PUT', path: '/api/v1/ca', least: 'admin', build: () => ({ url: '/api/v1/ca', body: { certificate: 'x', key: 'y' } }) },
    { method: 'GET', path: '/api/v1/ca/policy', least: 'viewer', build: () => ({ url: '/api/v1/ca/policy' }) },
    // The policy every other test issues under: the admin's call sets the defaults again.
    { method: 'PUT', path: '/api/v1/ca/policy', least: 'admin', build: () => ({ url: '/api/v1/ca/policy', body: {} }) },
    { method: 'GET', path: '/api/v1/schemas/profile', least: 'viewer', build: () => ({ url: '/api/v1/schemas/profile' }) },
    { method: 'GET', path: '/api/v1/profiles', least: 'viewer', build: () => ({ url: '/api/v1/profiles' }) },
    {
      method: 'GET',
      path: '/api/v1/profiles/{name}',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}` }),
    },
    {
      method: 'PUT',
      path: '/api/v1/profiles/{name}',
      least: 'operator',
      build: () => ({ url: `/api/v1/profiles/made${unique()}`, body: { spec: { description: 'roles' } } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/profiles/{name}',
      least: 'operator',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}` }),
    },
    {
      method: 'GET',
      path: '/api/v1/profiles/{name}/versions',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}/versions` }),
    },
    {
      method: 'GET',
      path: '/api/v1/profiles/{name}/versions/{version}',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}/versions/1` }),
    },
    {
      method: 'POST',
      path: '/api/v1/profiles/{name}/rollback',
      least: 'operator',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}/rollback`, body: { version: 1 } }),
    },
    {
      method: 'POST',
      path: '/api/v1/profiles/{name}/rollout',
      least: 'operator',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}/rollout`, body: { dry_run: true } }),
    },
    {
      method: 'POST',
      path: '/api/v1/profiles/{name}/assign',
      least: 'operator',
      build: async () => ({ url: `/api/v1/profiles/${await newProfile()}/assign`, body: { machines: [await newMachine()] } }),
    },
    {
      method: 'GET',
      path: '/api/v1/machines/{id}/explain',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/machines/${await newMachine()}/explain` }),
    },
    { method: 'POST', path: '/api/v1/explain', least: 'viewer', build: () => ({ url: '/api/v1/explain', body: { facts: { a: 1 } } }) },
    { method: 'GET', path: '/api/v1/endpoints', least: 'viewer', build: () => ({ url: '/api/v1/endpoints' }) },
    {
      method: 'GET',
      path: '/api/v1/endpoints/{name}',
      least: 'viewer',
      build: async () => ({ url: `/api/v1/endpoints/${await newEndpoint()}` }),
    },
    {
      method: 'PUT',
      path: '/api/v1/endpoints/{name}',
      least: 'admin',
      build: () => ({ url: `/api/v1/endpoints/made${unique()}`, body: { url: 'http://127.0.0.1:9' } }),
    },
    {
      method: 'DELETE',
      path: '/api/v1/endpoints/{name}',
      least: 'admin',
      build: async () => ({ url: `/api/v1/endpoints/${await newEndpoint()}` }),
    },
    {
      method: 'POST',
      path: '/api/v1/stage',
      least: 'operator',
      build: async () => ({ url: '/api/v1/stage', body: { serial: `STAGE-${unique()}`, profile: await newProfile() } }),
    },
    { method: 'GET', path: '/api/v1/pi/trees', least: 'viewer', build: () => ({ url: '/api/v1/pi/trees' }) },
    { method: 'GET', path: '/api/v1/pi/machines', least: 'viewer', build: () => ({ url: '/api/v1/pi/machines' }) },
    {
      method: 'POST',
      path: '/api/v1/pi/provision',
      least: 'operator',
      // No tree and no rule: callers past the role check hear 404, which is all this table needs (test/boot/pi.test.ts).
      build: () => ({ url: '/api/v1/pi/provision', body: { serial: (0xe0000000 + unique()).toString(16) } }),
    },
    {
      method: 'GET',
      path: '/api/v1/machines/{id}/boot-sessions',
      least: 'viewer',
      build: () => ({ url: `/api/v1/machines/${machineId}/boot-sessions` }),
    },
    { method: 'GET', path: '/api/v1/boot/scripts', least: 'viewer', build: () => ({ url: '/api/v1/boot/scripts' }) },
    {
      method: 'PUT',
      path: '/api/v1/boot/scripts/{name}',
      least: 'operator',
      build: () => ({ url: '/api/v1/boot/scripts/ready', body: { body: '#!ipxe\nexit\n' } }),
    },
    { method: 'GET', path: '/boot.ipxe', least: 'public', build: () => ({ url: '/boot.ipxe' }) },

    { method: 'GET', path: '/api/v1/users', least: 'admin', build: () => ({ url: '/api/v1/users' }) },
    {
      method: 'POST',
      path: '/api/v1/users',
      least: 'admin',
      build: () => ({ url: '/api/v1/users', body: { username: `made${unique()}`, password, role: 'viewer' } }),
    },
    { method: 'GET', path: '/api/v1/users/{id}', least: 'admin', build: async () => ({ url: `/api/v1/users/${await newUser()}` }) },
    {
      method: 'PUT',
      path: '/api/v1/users/{id}',
      least: 'admin',
      build: async () => ({ url: `/api/v1/users/${await newUser()}`, body: { email: 'someone@example.com' } }),
    },
    { method: 'DELETE', path: '/api/v1/users/{id}', least: 'admin', build: async () => ({ url: `/api/v1/users/${await newUser()}` }) },

    { method: 'POST', path: '/api/v1/tokens', least: 'viewer', build: () => ({ url: '/api/v1/tokens', body: { name: `tok${unique()}` } }) },
    { method: 'GET', path: '/api/v1/tokens', least: 'viewer', build: () => ({ url: '/api/v1/tokens' }) },
    {
      method: 'DELETE',
      path: '/api/v1/tokens/{id}',
      least: 'viewer',
      // Each caller revokes a token of its own (the admin's token stands in for the anonymous caller's).
      build: async (_caller, token) => {
        const created = await h().request('POST', '/api/v1/tokens', { token: token ?? h().admin, body: { name: `own${unique()}` } });
        return { url: `/api/v1/tokens/${created.body.id}` };
      },
    },
  ];

  for (const route of routes) {
    const plan = callers.map((caller) => `${caller} ${expected(route, caller)}`).join(', ');
    test(`${route.method} ${route.path}: ${plan}`, async () => {
      const got: Record<string, unknown> = {};
      const want: Record<string, unknown> = {};
      for (const caller of callers) {
        const { url, body } = await route.build(caller, tokens[caller]);
        const reply = await answered(
          `${route.method} ${url} as ${caller}`,
          h().request(route.method, url, { token: tokens[caller], body }),
        );
        got[caller] = outcome(reply);
        want[caller] = expected(route, caller);
        if (got[caller] === 401) assertProblem(reply, 'unauthenticated', url);
        if (got[caller] === 403) assertProblem(reply, 'forbidden', url);
      }
      assert.deepEqual(got, want);
    });
  }

  test('the setup route needs no token: every caller hears that the setup code is wrong, not who they are', async () => {
    for (const caller of callers) {
      const body = { code: 'not-the-code', username: `boss${unique()}`, password };
      const reply = await h().request('POST', '/api/v1/setup', { token: tokens[caller], body });
      assertProblem(reply, 'forbidden', '/api/v1/setup');
      assert.match(reply.body.detail, /setup code/);
    }
  });

  test('anonymous callers get 401 from every route of the OpenAPI document except the public ones', async () => {
    const doc = (await h().request('GET', '/api/v1/openapi.json', { token: null })).body;
    const reachable: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) {
        const url = path.replace(/\{[^}]+\}/g, 'x1');
        const reply = await h().request(method.toUpperCase(), url, { token: null, body: method === 'get' ? undefined : {} });
        if (reply.status === 401) assertProblem(reply, 'unauthenticated');
        else reachable.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(reachable.sort(), [...publicOperations].sort());
    assert.equal((await h().request('GET', '/api/docs', { token: null })).status, 200);
    assertProblem(await h().request('GET', '/api/v1/events/stream', { token: null }), 'unauthenticated');
  });

  test('a viewer changes their own password with current_password, but not their role', async () => {
    const token = await h().userToken('viewer', 'vera');
    const me = (await h().request('GET', '/api/v1/me', { token })).body;
    const url = `/api/v1/users/${me.id}`;
    const wrong = await h().request('PUT', url, { token, body: { password: 'a new password', current_password: 'not it' } });
    assert.deepEqual(assertProblem(wrong, 'validation_failed', url), ['/current_password']);
    const missing = await h().request('PUT', url, { token, body: { password: 'a new password' } });
    assert.deepEqual(assertProblem(missing, 'validation_failed', url), ['/current_password']);
    const changed = await h().request('PUT', url, { token, body: { password: 'a new password', current_password: password } });
    assert.equal(changed.status, 200);
    const login = await h().request('POST', '/api/v1/login', { token: null, body: { username: 'vera', password: 'a new password' } });
    assert.equal(login.status, 200);
    // The new password ended the session it was changed with (test/security/auth.test.ts); the new one goes on.
    assert.equal((await h().request('GET', '/api/v1/me', { token })).status, 401);
    const session = login.body.token;
    const promote = await h().request('PUT', url, { token: session, body: { role: 'admin', current_password: 'a new password' } });
    assertProblem(promote, 'forbidden', url);
    assert.equal((await h().request('GET', '/api/v1/me', { token: session })).body.role, 'viewer');
  });

  test('an operator cannot change another user, not even their password', async () => {
    const target = await newUser();
    const url = `/api/v1/users/${target}`;
    const reply = await h().request('PUT', url, { token: tokens.operator, body: { password: 'taken over', current_password: password } });
    assertProblem(reply, 'forbidden', url);
  });

  test('a non-admin asking after another user hears 403 whether or not that user exists', async () => {
    const existing = `/api/v1/users/${await newUser()}`;
    const missing = '/api/v1/users/u_01nobodyhere00000000000000';
    for (const url of [existing, missing]) {
      assertProblem(await h().request('GET', url, { token: tokens.viewer }), 'forbidden', url);
      assertProblem(
        await h().request('PUT', url, { token: tokens.operator, body: { password: 'taken over', current_password: password } }),
        'forbidden',
        url,
      );
    }
  });

  test('an API token created by an admin with role viewer can read but not write', async () => {
    const created = await h().request('POST', '/api/v1/tokens', { body: { name: 'read-only', role: 'viewer' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.role, 'viewer');
    const token = created.body.token;
    assert.equal((await h().request('GET', '/api/v1/machines', { token })).status, 200);
    assertProblem(await h().request('POST', '/api/v1/fleets', { token, body: { name: 'by-readonly' } }), 'forbidden');
    assertProblem(await h().request('PUT', `/api/v1/machines/${machineId}`, { token, body: { description: 'no' } }), 'forbidden');
    assertProblem(await h().request('GET', '/api/v1/users', { token }), 'forbidden');
  });

  test('a user cannot create a token with a role above their own', async () => {
    const reply = await h().request('POST', '/api/v1/tokens', { token: tokens.viewer, body: { name: 'escalate', role: 'admin' } });
    assertProblem(reply, 'forbidden', '/api/v1/tokens');
  });

  test('a token never has more rights than its user has now: demoting the user demotes the token', async () => {
    const session = await h().userToken('operator', 'otto');
    const created = await h().request('POST', '/api/v1/tokens', { token: session, body: { name: 'ci', role: 'operator' } });
    assert.equal(created.status, 201);
    const token = created.body.token;
    assert.equal((await h().request('POST', '/api/v1/fleets', { token, body: { name: 'by-otto' } })).status, 201);
    const demote = await h().request('PUT', '/api/v1/users/otto', { body: { role: 'viewer' } });
    assert.equal(demote.status, 200);
    assertProblem(await h().request('POST', '/api/v1/fleets', { token, body: { name: 'by-otto-2' } }), 'forbidden');
    assertProblem(await h().request('POST', '/api/v1/fleets', { token: session, body: { name: 'by-otto-3' } }), 'forbidden');
    assert.equal((await h().request('GET', '/api/v1/fleets', { token })).status, 200);
  });

  test('the last admin can be neither deleted nor demoted', async () => {
    const admins = (await h().request('GET', '/api/v1/users?limit=500')).body.items.filter((u: { role: string }) => u.role === 'admin');
    assert.deepEqual(
      admins.map((u: { username: string }) => u.username),
      ['admin'],
    );
    const url = `/api/v1/users/${admins[0].id}`;
    assertProblem(await h().request('DELETE', url), 'conflict', url);
    assertProblem(await h().request('PUT', url, { body: { role: 'operator' } }), 'conflict', url);
    const second = await h().request('POST', '/api/v1/users', { body: { username: 'admin2', password, role: 'admin' } });
    assert.equal((await h().request('DELETE', `/api/v1/users/${second.body.id}`)).status, 204);
    assertProblem(await h().request('PUT', url, { body: { role: 'viewer' } }), 'conflict', url);
    assert.equal((await h().request('GET', url)).body.role, 'admin');
  });
});
