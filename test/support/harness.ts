import { after, before, describe } from 'node:test';
import type { Role } from '@muster/contract';
import { createMuster, type Muster } from '../../packages/server/src/app.ts';
import { type Config, loadConfig } from '../../packages/server/src/config/load.ts';
import { createTestDatabase, type DatabaseKind, databaseKinds, type TestDatabase } from './databases.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape
  body: any;
  text: string;
}

export interface RequestOptions {
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
  /** A raw payload, sent as is (for malformed JSON). */
  payload?: string;
  /** The client's address as the server sees it (default 127.0.0.1). */
  remoteAddress?: string;
}

export interface Harness {
  kind: DatabaseKind;
  muster: Muster;
  config: Config;
  database: TestDatabase;
  /** Token of the admin created at start. */
  admin: string;
  request(method: string, url: string, options?: RequestOptions): Promise<Reply>;
  /** Creates a user with the role and returns a session token for it. */
  userToken(role: Role, username?: string): Promise<string>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  backoffBaseMs?: number;
}

export function testConfig(database: TestDatabase, env: Record<string, string> = {}): Config {
  return loadConfig(
    { listen: '127.0.0.1:0', dataDir: database.dataDir, databaseUrl: database.databaseUrl },
    { MUSTER_ENROLL_RATE: '0', MUSTER_LOG_LEVEL: 'silent', MUSTER_TFTP_LISTEN: 'off', ...env },
  );
}

export async function startHarness(kind: DatabaseKind, options: HarnessOptions = {}): Promise<Harness> {
  const database = await createTestDatabase(kind);
  const config = testConfig(database, options.env);
  let muster: Muster;
  try {
    muster = await createMuster(config, { backoffBaseMs: options.backoffBaseMs ?? 50 });
    await muster.listen();
  } catch (error) {
    await database.drop();
    throw error;
  }
  const request: Harness['request'] = async (method, url, opts = {}) => {
    const token = opts.token === undefined ? harness.admin : opts.token;
    const headers: Record<string, string> = { ...opts.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined = opts.payload;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    } else if (payload !== undefined) headers['content-type'] ??= 'application/json';
    const response = await muster.app.inject({ method: method as 'GET', url, headers, payload, remoteAddress: opts.remoteAddress });
    let body: unknown = response.body;
    try {
      body = JSON.parse(response.body);
    } catch {}
    return { status: response.statusCode, headers: response.headers as Reply['headers'], body, text: response.body };
  };
  let counter = 0;
  const harness: Harness = {
    kind,
    muster,
    config,
    database,
    admin: '',
    request,
    async userToken(role, username = `${role}${++counter}`) {
      await muster.users.create('test', { username, role, password: 'correct horse battery' });
      const login = await request('POST', '/api/v1/login', { token: null, body: { username, password: 'correct horse battery' } });
      return login.body.token as string;
    },
  };
  harness.admin = await harness.userToken('admin', 'admin');
  return harness;
}

/** Runs a suite once per database (SQLite always, PostgreSQL when configured) against a fresh server. */
export function eachDatabase(title: string, suite: (h: () => Harness) => void, options: HarnessOptions = {}): void {
  for (const kind of databaseKinds) {
    describe(`${title} [${kind}]`, () => {
      let harness: Harness;
      before(async () => {
        harness = await startHarness(kind, options);
      });
      after(async () => {
        await harness?.muster.close();
        await harness?.database.drop();
      });
      suite(() => harness);
    });
  }
}

export function enrollBody(n: number, extra: Record<string, unknown> = {}) {
  const hex = n.toString(16).padStart(6, '0');
  return {
    service_tag: `TAG${n.toString().padStart(5, '0')}`,
    mac_address: `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`,
    hardware: { cpu: { model: 'EPYC', cores: 16 }, memory_bytes: 68719476736 },
    ...extra,
  };
}

/** Waits until a job has ended (succeeded, failed or cancelled) and returns it. */
export async function waitForJob(h: () => Harness, id: string) {
  for (let i = 0; i < 400; i++) {
    const job = (await h().request('GET', `/api/v1/jobs/${id}`)).body;
    if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`job ${id} did not finish`);
}

/** A fetch response's JSON body, untyped: tests assert on its shape. */
// biome-ignore lint/suspicious/noExplicitAny: see above
export const json = (response: Response): Promise<any> => response.json();
