import type { AccountHook, ProfileCheck, StageCheck } from '@muster/contract';
import { parseDuration } from '../../platform/time/duration.ts';
import { callEndpoint, type HookCall } from '../endpoints/call.ts';
import type { ResolvedEndpoint } from '../endpoints/service.ts';
import { type ProfileContexts, renderRequest } from '../profiles/render.ts';

// The account hook and the checks of `muster stage` (docs/stage.md): seed 002's POST /users, PATCH on 409, and
// the Loader's /health and /login. Requests are rendered before any is sent, so a template error sends nothing.

export type EndpointLookup = (name: string) => Promise<ResolvedEndpoint | null>;

const defaultTimeoutMs = 10_000;
const longestTimeoutMs = 60_000;

/** Why the account hook failed: the method and path it sent (public: no secret renders into them), what came back. */
export class HookFailure extends Error {
  readonly step: 'create' | 'update';
  readonly status: number | null;

  constructor(step: 'create' | 'update', status: number | null, reason: string) {
    super(reason);
    this.step = step;
    this.status = status;
  }
}

interface RenderedCall extends HookCall {
  expect: number[];
}

/** The hook's time for each request: its timeout, 10s when not given, between 1s and 60s. */
export function hookTimeoutMs(hook: { timeout?: string } | undefined): number {
  if (!hook?.timeout) return defaultTimeoutMs;
  return Math.min(longestTimeoutMs, Math.max(1000, parseDuration(hook.timeout) * 1000));
}

/**
 * Creates the machine's account, or when the endpoint answers 409 (it exists) sends the update request, so the
 * account ends with this secret. Returns which; throws HookFailure for anything else.
 */
export async function runAccountHook(lookup: EndpointLookup, hook: AccountHook, contexts: ProfileContexts): Promise<'created' | 'updated'> {
  const create: RenderedCall = await renderRequest('account.create', hook.create, contexts);
  const update: RenderedCall | null = hook.update ? await renderRequest('account.update', hook.update, contexts) : null;
  const endpoint = await lookup(hook.endpoint);
  if (!endpoint) throw new HookFailure('create', null, `no endpoint named ${hook.endpoint} (muster endpoint set)`);
  const timeoutMs = hookTimeoutMs(hook);
  const label = (call: RenderedCall) => `${call.method} ${call.path}`;
  const created = await callEndpoint(endpoint, create, timeoutMs);
  if (succeeded(created.status, create.expect)) return 'created';
  if (created.status !== 409) throw new HookFailure('create', created.status, `${label(create)} on ${endpoint.name}: ${outcome(created)}`);
  if (!update)
    throw new HookFailure(
      'create',
      409,
      `${label(create)} on ${endpoint.name} answered 409 (the account exists) and the profile has no update request`,
    );
  const updated = await callEndpoint(endpoint, update, timeoutMs);
  if (succeeded(updated.status, update.expect)) return 'updated';
  throw new HookFailure(
    'update',
    updated.status,
    `${label(create)} on ${endpoint.name} answered 409 (the account exists), then ${label(update)}: ${outcome(updated)}`,
  );
}

/** Runs each check once, in order, and reports it; a check never throws. */
export async function runChecks(
  lookup: EndpointLookup,
  checks: ProfileCheck[],
  contexts: ProfileContexts,
  timeoutMs: number,
): Promise<StageCheck[]> {
  const results: StageCheck[] = [];
  for (const [i, check] of checks.entries()) {
    const call: RenderedCall = await renderRequest(`checks[${i}].request`, check.request, contexts);
    const endpoint = await lookup(check.endpoint);
    if (!endpoint) {
      results.push({ name: check.name, ok: false, status: null, error: `no endpoint named ${check.endpoint}` });
      continue;
    }
    const answer = await callEndpoint(endpoint, call, timeoutMs);
    const ok = succeeded(answer.status, call.expect);
    results.push({ name: check.name, ok, status: answer.status, error: ok ? null : outcome(answer) });
  }
  return results;
}

function succeeded(status: number | null, expect: number[]): boolean {
  return status !== null && (status < 300 || status >= 400) && expect.includes(status);
}

function outcome(answer: { status: number | null; error: string | null }): string {
  if (answer.status === null) return answer.error ?? 'no answer';
  if (answer.status >= 300 && answer.status < 400) return `answered ${answer.status}, a redirect, which hooks do not follow`;
  return `answered ${answer.status}`;
}
