import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// Seed 002's admin API and the Loader's side, on 127.0.0.1, for `muster stage` tests:
//   POST /users {email, password, role}   201, or 409 when the email exists
//   PATCH /users/password {email, password}   200, or 404 when the email is unknown
//   GET /health   200 {status: 'healthy'}
//   POST /login {email, password}   200 {status: 'ok'} when they match an account, else 401
// Switches make it fail as real ones do: POST answers 500 or never answers, PATCH fails, a bearer token is required.

export interface AdminApiSwitches {
  /** POST /users answers this instead (e.g. 500). */
  createStatus: number | null;
  /** POST /users never answers. */
  createHangs: boolean;
  /** PATCH /users/password answers this instead (e.g. 500). */
  updateStatus: number | null;
  /** Every request must carry Authorization: Bearer <this>, else 401. */
  bearer: string | null;
}

export interface AdminApi {
  url: string;
  /** Accounts by email. */
  users: Map<string, { password: string; role: string }>;
  /** Every request received, in order. */
  requests: { method: string; path: string; authorization: string | null }[];
  switches: AdminApiSwitches;
  /** How many requests of `method path` arrived. */
  count(method: string, path: string): number;
  reset(): void;
  close(): Promise<void>;
}

const bodyLimit = 64 * 1024;

async function readJson(request: IncomingMessage): Promise<Record<string, unknown> | null> {
  let text = '';
  for await (const chunk of request) {
    text += chunk;
    if (text.length > bodyLimit) return null;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const defaults = (): AdminApiSwitches => ({ createStatus: null, createHangs: false, updateStatus: null, bearer: null });

export async function startAdminApi(): Promise<AdminApi> {
  const users = new Map<string, { password: string; role: string }>();
  const requests: AdminApi['requests'] = [];
  const switches = defaults();

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    const method = request.method ?? 'GET';
    requests.push({ method, path, authorization: request.headers.authorization ?? null });
    if (switches.bearer !== null && request.headers.authorization !== `Bearer ${switches.bearer}`)
      return send(response, 401, { error: 'unauthorized' });
    if (method === 'GET' && path === '/health') return send(response, 200, { status: 'healthy' });
    const route = `${method} ${path}`;
    if (route !== 'POST /users' && route !== 'PATCH /users/password' && route !== 'POST /login')
      return send(response, 404, { error: 'not found' });
    const body = await readJson(request);
    if (!body) return send(response, 400, { error: 'a JSON object is required' });
    const email = typeof body.email === 'string' ? body.email : '';
    const password = typeof body.password === 'string' ? body.password : '';
    if (method === 'POST' && path === '/users') {
      if (switches.createHangs) return;
      if (switches.createStatus !== null) return send(response, switches.createStatus, { error: 'switched' });
      if (email === '' || password === '' || typeof body.role !== 'string') return send(response, 400, { error: 'email, password, role' });
      if (users.has(email)) return send(response, 409, { error: 'exists' });
      users.set(email, { password, role: body.role });
      return send(response, 201, { email, role: body.role });
    }
    if (method === 'PATCH' && path === '/users/password') {
      if (switches.updateStatus !== null) return send(response, switches.updateStatus, { error: 'switched' });
      const account = users.get(email);
      if (!account) return send(response, 404, { error: 'no such user' });
      account.password = password;
      return send(response, 200, { email });
    }
    const user = users.get(email);
    return user && user.password === password ? send(response, 200, { status: 'ok' }) : send(response, 401, { status: 'denied' });
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    users,
    requests,
    switches,
    count: (method, path) => requests.filter((r) => r.method === method && r.path === path).length,
    reset() {
      Object.assign(switches, defaults());
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Requests left hanging on purpose would keep it open.
        server.closeAllConnections();
      }),
  };
}

const email = '{{ serial | split: "-" | last | downcase }}';

/** Seed 002's profile: device.conf with the email and the password, POST /users, PATCH on 409, /health and /login. */
export function jetsonSpec(options: { endpoint?: string; timeout?: string; createPath?: string; checks?: unknown[] } = {}) {
  const endpoint = options.endpoint ?? 'admin-api';
  return {
    description: 'Azaion Jetson (seed 002)',
    variables: { email: `azaion-jetson-${email}@azaion.com` },
    hostname: `azjn-${email}`,
    secret: { bytes: 16, encoding: 'hex' },
    files: [
      {
        path: 'etc/azaion/device.conf',
        mode: '0600',
        template: 'AZAION_DEVICE_EMAIL={{ vars.email }}\nAZAION_DEVICE_PASSWORD={{ secret }}\n',
      },
    ],
    account: {
      endpoint,
      ...(options.timeout ? { timeout: options.timeout } : {}),
      create: {
        method: 'POST',
        path: options.createPath ?? '/users',
        body: { email: '{{ vars.email }}', password: '{{ secret }}', role: 'CompanionPC' },
      },
      update: { method: 'PATCH', path: '/users/password', body: { email: '{{ vars.email }}', password: '{{ secret }}' } },
    },
    checks: options.checks ?? [
      { name: 'health', endpoint: 'loader', request: { method: 'GET', path: '/health' } },
      {
        name: 'login',
        endpoint: 'loader',
        request: { method: 'POST', path: '/login', body: { email: '{{ vars.email }}', password: '{{ secret }}' } },
      },
    ],
  };
}
