import type { ResolvedEndpoint } from './service.ts';

// One request of a hook to an endpoint (docs/stage.md). The request stays on the endpoint: its rendered path is
// appended to the endpoint's URL and must not leave its origin or path; redirects are not followed (a 3xx is a
// failure); the time is bounded, and so is what is read of the answer, which is never shown.

export interface HookCall {
  method: string;
  path: string;
  body: Record<string, string> | null;
}

export interface HookAnswer {
  /** The HTTP status; null when none came. */
  status: number | null;
  /** Why no status came: timed out, refused, the path leaves the endpoint. */
  error: string | null;
}

const answerReadLimit = 64 * 1024;

/** The URL a hook's path names on an endpoint, or null when it would leave the endpoint's origin or path. */
export function hookUrl(endpointUrl: string, path: string): URL | null {
  if (path !== '' && !path.startsWith('/') && !path.startsWith('?')) return null;
  let url: URL;
  try {
    url = new URL(`${endpointUrl}${path}`);
  } catch {
    return null;
  }
  const base = new URL(endpointUrl);
  const root = base.pathname.replace(/\/+$/, '');
  const within = url.pathname === root || url.pathname === `${root}/` || url.pathname.startsWith(`${root}/`);
  return url.origin === base.origin && url.username === '' && url.password === '' && within ? url : null;
}

/** Sends one request; never throws. */
export async function callEndpoint(endpoint: ResolvedEndpoint, call: HookCall, timeoutMs: number): Promise<HookAnswer> {
  const url = hookUrl(endpoint.url, call.path);
  if (!url) return { status: null, error: `the path leaves endpoint ${endpoint.name}: it must start with / and stay under its URL` };
  const headers: Record<string, string> = { accept: 'application/json' };
  if (endpoint.bearer !== null) headers.authorization = `Bearer ${endpoint.bearer}`;
  if (call.body !== null) headers['content-type'] = 'application/json';
  try {
    const response = await fetch(url, {
      method: call.method,
      headers,
      body: call.body === null ? undefined : JSON.stringify(call.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await drain(response);
    return { status: response.status, error: null };
  } catch (error) {
    return { status: null, error: failureOf(error, timeoutMs) };
  }
}

/** Reads at most answerReadLimit bytes of the answer (so the connection can be kept), then drops the rest. */
async function drain(response: Response): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  let read = 0;
  try {
    while (read < answerReadLimit) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // What the endpoint answered is the status; a body cut short changes nothing.
  }
}

function failureOf(error: unknown, timeoutMs: number): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs / 1000}s`;
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code) return `connection failed (${code})`;
  return e.cause?.message ?? e.message;
}
