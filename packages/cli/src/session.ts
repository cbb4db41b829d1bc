import { MusterError } from '@muster/contract/errors.ts';
import type { Command } from 'commander';
import { ApiClient } from './client.ts';
import { readStoredLogin, type StoredLogin } from './config-store.ts';

export const defaultServer = 'http://127.0.0.1:8080';

/** The program-wide options (main.ts); commander has already applied MUSTER_SERVER and MUSTER_TOKEN. */
export interface GlobalOptions {
  server?: string;
  token?: string;
  json?: boolean;
}

export interface Session {
  api: ApiClient;
  server: string;
  json: boolean;
  stored: StoredLogin;
}

/** Accepts `host:port` as well as a URL; returns the URL without a trailing slash. */
export function normalizeServer(raw: string): string {
  const text = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new MusterError('bad_request', `server "${raw}" is not a URL like http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MusterError('bad_request', `server "${raw}" must be an http:// or https:// URL`);
  }
  return url.toString().replace(/\/+$/, '');
}

export interface Connection {
  server: string;
  token: string | undefined;
  /** Said when the server refuses the token: where it came from decides how to fix it. */
  tokenHint: string | undefined;
}

/**
 * Server: --server, MUSTER_SERVER, the stored login, the default. Token: --token, MUSTER_TOKEN, or the
 * stored token, but only for the server it was issued by, so it is never sent to another server.
 */
export function resolveConnection(options: GlobalOptions, stored: StoredLogin): Connection {
  const server = normalizeServer(options.server ?? stored.server ?? defaultServer);
  if (options.token) return { server, token: options.token, tokenHint: 'check --token or MUSTER_TOKEN' };
  const storedServer = stored.server ? normalizeServer(stored.server) : undefined;
  if (storedServer !== server || !stored.token) return { server, token: undefined, tokenHint: undefined };
  return { server, token: stored.token, tokenHint: 'log in again with `muster login`' };
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export function wantsJson(command: Command): boolean {
  return Boolean(globalOptions(command).json);
}

/** Everything an API command needs: a client for the resolved server and token, and the output mode; `timeoutMs` per request. */
export async function openSession(command: Command, extra: { timeoutMs?: number } = {}): Promise<Session> {
  const options = globalOptions(command);
  // With both given, a broken config file is no reason to fail.
  const stored = options.server && options.token ? {} : await readStoredLogin();
  const { server, token, tokenHint } = resolveConnection(options, stored);
  return { api: new ApiClient({ server, token, tokenHint, timeoutMs: extra.timeoutMs }), server, json: Boolean(options.json), stored };
}
