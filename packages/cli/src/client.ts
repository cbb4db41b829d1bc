import type { PageResult } from '@muster/contract';
import { type ErrorCode, type FieldError, isErrorCode, MusterError } from '@muster/contract/errors.ts';
import { parseEventStream, type StreamMessage } from './event-stream.ts';

export type QueryValue = string | number | boolean | readonly string[] | undefined | null;
export type Query = Record<string, QueryValue>;

export interface ClientOptions {
  server: string;
  token?: string;
  /** Per request, not for event streams. */
  timeoutMs?: number;
  /** What to do when the server refuses the token, e.g. "log in again with `muster login`". */
  tokenHint?: string;
}

/** The most a list page may hold (contract PageQuery). */
export const maxPageSize = 500;

/** Talks to muster's /api/v1 over fetch; every failure becomes a MusterError. */
export class ApiClient {
  readonly server: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #tokenHint: string | undefined;

  constructor(options: ClientOptions) {
    this.server = options.server;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#tokenHint = options.tokenHint;
  }

  get hasToken(): boolean {
    return Boolean(this.#token);
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.#json<T>('GET', path, query);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.#json<T>('POST', path, undefined, body);
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.#json<T>('PUT', path, undefined, body);
  }

  delete<T = void>(path: string): Promise<T> {
    return this.#json<T>('DELETE', path);
  }

  /** A text/plain resource, such as a job log. */
  async text(path: string, query?: Query): Promise<string> {
    const response = await this.#send('GET', path, query, undefined, 'text/plain');
    return response.text();
  }

  page<T>(path: string, query: Query = {}): Promise<PageResult<T>> {
    return this.get<PageResult<T>>(path, query);
  }

  /** Follows next_cursor until the last page. */
  async all<T>(path: string, query: Query = {}, pageSize = maxPageSize): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const page: PageResult<T> = await this.page<T>(path, { ...query, limit: pageSize, cursor: cursor ?? undefined });
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  /** Opens a server-sent event stream; ends when the server closes it or `signal` aborts. */
  async *stream(path: string, query: Query, options: { lastEventId?: string; signal?: AbortSignal } = {}): AsyncGenerator<StreamMessage> {
    const headers: Record<string, string> = {};
    if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
    const response = await this.#send('GET', path, query, undefined, 'text/event-stream', {
      headers,
      signal: options.signal,
      timeout: false,
    });
    if (!response.body) return;
    yield* parseEventStream(response.body);
  }

  async #json<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, query, body, 'application/json');
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MusterError('internal', `the server at ${this.server} answered ${method} ${path} with something that is not JSON`);
    }
  }

  async #send(
    method: string,
    path: string,
    query: Query | undefined,
    body: unknown,
    accept: string,
    extra: { headers?: Record<string, string>; signal?: AbortSignal; timeout?: false } = {},
  ): Promise<Response> {
    const url = this.url(path, query);
    const headers: Record<string, string> = { accept: `${accept}, application/problem+json`, ...extra.headers };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signals = [extra.signal, extra.timeout === false ? undefined : AbortSignal.timeout(this.#timeoutMs)].filter(
      (s) => s !== undefined,
    );
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      });
    } catch (error) {
      if (extra.signal?.aborted) throw error;
      throw connectionError(this.server, error);
    }
    if (!response.ok) {
      const error = await responseError(response, `${method} ${url.pathname}`);
      if (error.code === 'unauthenticated' && !this.#token) {
        throw new MusterError('unauthenticated', `not logged in to ${this.server}: run \`muster login\`, or pass --token or MUSTER_TOKEN`);
      }
      if (error.code === 'invalid_token' && this.#tokenHint) throw new MusterError(error.code, `${error.message}; ${this.#tokenHint}`);
      throw error;
    }
    return response;
  }

  url(path: string, query?: Query): URL {
    const url = new URL(`${this.server.replace(/\/+$/, '')}/api/v1${path}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, item);
      else url.searchParams.set(key, String(value));
    }
    return url;
  }
}

/** Encodes one path segment: machine refs such as `mac:00:11:…` carry colons and more. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

const statusCodes: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'idempotency_mismatch',
  429: 'rate_limited',
  503: 'unavailable',
};

function codeForStatus(status: number): ErrorCode {
  return (
    statusCodes[status] ?? (status >= 400 && status < 500 ? 'bad_request' : status === 502 || status === 504 ? 'unavailable' : 'internal')
  );
}

/** Turns an error response (problem+json or anything else, e.g. a proxy's HTML page) into a MusterError. */
export async function responseError(response: Response, what: string): Promise<MusterError> {
  const text = await response.text().catch(() => '');
  let problem: Record<string, unknown> | null = null;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) problem = parsed as Record<string, unknown>;
  } catch {}
  const code = isErrorCode(problem?.code) ? problem.code : codeForStatus(response.status);
  const detail =
    typeof problem?.detail === 'string' && problem.detail !== ''
      ? problem.detail
      : typeof problem?.title === 'string'
        ? problem.title
        : `${what} failed: the server answered ${response.status} ${response.statusText}`.trim();
  const errors = Array.isArray(problem?.errors) ? (problem.errors as unknown[]).filter(isFieldError) : [];
  return new MusterError(code, detail, { errors, extra: { status: response.status, ...(problem ?? {}) } });
}

function isFieldError(value: unknown): value is FieldError {
  const e = value as FieldError;
  return Boolean(e) && typeof e.path === 'string' && typeof e.message === 'string';
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_SOCKET']);

/** fetch's "fetch failed" says nothing; its cause says why. */
export function connectionError(server: string, error: unknown): MusterError {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  const code = e.cause?.code;
  if (e.name === 'TimeoutError')
    return new MusterError('unavailable', `the server at ${server} did not answer in time: is it overloaded or unreachable?`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new MusterError('unavailable', `cannot resolve the host of ${server}: check --server or MUSTER_SERVER`);
  }
  if (code && unreachableCodes.has(code)) {
    return new MusterError('unavailable', `cannot reach the server at ${server}: is \`muster serve\` running?`);
  }
  const reason = e.cause?.message ?? e.message;
  return new MusterError('unavailable', `cannot reach the server at ${server} (${reason}): is \`muster serve\` running?`);
}
