import assert from 'node:assert/strict';
import { type ErrorCode, errorCodes, problemTypeBase } from '@muster/contract';
import type { Harness, Reply } from '../support/harness.ts';

/**
 * Asserts that a reply is RFC 9457 problem+json for `code`, with its status, type, title, instance and
 * request id; returns the field paths it names so that callers can check them.
 */
export function assertProblem(reply: Reply, code: ErrorCode, instance?: string): string[] {
  const { status, title } = errorCodes[code];
  assert.equal(reply.status, status, `expected ${status} ${code}, got ${reply.status}: ${reply.text.slice(0, 300)}`);
  assert.match(String(reply.headers['content-type']), /^application\/problem\+json\b/);
  const body = reply.body;
  assert.deepEqual(
    { type: body.type, title: body.title, status: body.status, code: body.code, request_id: body.request_id },
    { type: problemTypeBase + code, title, status, code, request_id: reply.headers['x-request-id'] },
  );
  assert.equal(typeof body.detail, 'string');
  assert.ok(body.detail.length > 0, 'detail says what went wrong');
  if (instance !== undefined) assert.equal(body.instance, instance);
  assert.ok(Array.isArray(body.errors), 'errors is a list');
  for (const error of body.errors) assert.deepEqual(Object.keys(error).sort(), ['message', 'path']);
  return body.errors.map((e: { path: string }) => e.path);
}

/** The id of the newest event, to check later that nothing was written after it. */
export async function lastEventId(h: Harness): Promise<number> {
  let after = 0;
  for (;;) {
    const page = await h.request('GET', `/api/v1/events?limit=500&after=${after}`);
    assert.equal(page.status, 200);
    after = page.body.items.at(-1)?.id ?? after;
    if (!page.body.next_cursor) return after;
  }
}

/** Events written after `id`, oldest first. */
export async function eventsAfter(h: Harness, id: number): Promise<{ id: number; type: string; machine_id: string | null }[]> {
  const page = await h.request('GET', `/api/v1/events?limit=500&after=${id}`);
  assert.equal(page.status, 200);
  return page.body.items;
}

/** Every machine id, in id order (all pages). */
export async function allMachineIds(h: Harness, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `/api/v1/machines?limit=500${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const page = await h.request('GET', url);
    assert.equal(page.status, 200);
    ids.push(...page.body.items.map((m: { id: string }) => m.id));
    cursor = page.body.next_cursor;
  } while (cursor);
  return ids;
}

/** What a refused request must leave as it was: every machine, fleet, group, user and token, and the event log. */
export async function stateOf(h: Harness) {
  const list = async (url: string) => {
    const reply = await h.request('GET', `${url}?limit=500`);
    assert.equal(reply.status, 200);
    return reply.body.items;
  };
  return {
    machines: await list('/api/v1/machines'),
    fleets: await list('/api/v1/fleets'),
    groups: await list('/api/v1/groups'),
    users: await list('/api/v1/users'),
    tokens: await list('/api/v1/tokens'),
    lastEventId: await lastEventId(h),
  };
}

/** Runs a request that must be refused and asserts that it changed nothing; returns its reply. */
export async function refusedWithoutChange(h: Harness, send: () => Promise<Reply>): Promise<Reply> {
  const before = await stateOf(h);
  const reply = await send();
  assert.ok(reply.status >= 400, `expected a refusal, got ${reply.status}: ${reply.text.slice(0, 300)}`);
  assert.deepEqual(await stateOf(h), before);
  return reply;
}

/** Awaits a reply, failing with a clear message instead of hanging the suite when the server never answers. */
export async function answered<T>(what: string, pending: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} got no answer within ${ms} ms: the server hangs`)), ms);
  });
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The operations anyone may call without a token (everything else answers 401 to anonymous callers). */
export const publicOperations = [
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /api/v1/metrics',
  'GET /api/v1/openapi.json',
  'POST /api/v1/login',
  'POST /api/v1/setup',
  'POST /api/v1/enroll',
  'POST /api/v1/claims/otp',
  'POST /api/v1/claims/token',
  'GET /api/v1/ca',
  'GET /api/v1/ca/crl',
  'GET /boot.ipxe',
  'GET /ipxe',
  'GET /nixos/machines/{file}',
  'GET /boot/artifacts/{sha256}/{filename}',
  'HEAD /boot/artifacts/{sha256}/{filename}',
];
