import { type Endpoint, type EndpointPut, MusterError } from '@muster/contract';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import type { EndpointRow } from '../../platform/db/schema.ts';
import type { Transactor } from '../../platform/db/transact.ts';
import { currentProfileSpecs, deleteEndpointRow, findEndpointRow, listEndpointRows, upsertEndpoint } from './store.ts';

// Endpoints (docs/stage.md): the only places a profile's hooks may send a request, and with it a machine's
// secret. Operators write profiles; only an admin says where hooks go, so a profile cannot send secrets to a URL
// of its choosing. The bearer token is sealed with the master key as endpoint:<name> and never shown.

export const endpointCredentialName = (name: string) => `endpoint:${name}`;

/** An endpoint as hooks use it: its URL and its bearer token, opened. */
export interface ResolvedEndpoint {
  name: string;
  url: string;
  bearer: string | null;
}

/** The URL an endpoint is stored with: http or https, with no user, password, query or fragment, no trailing slash. */
export function endpointUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl('is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidUrl('must be http:// or https://');
  if (url.username !== '' || url.password !== '') throw invalidUrl('must not hold a user or password: give a token with --bearer-stdin');
  if (url.search !== '' || url.hash !== '') throw invalidUrl('must not hold a query or fragment: hooks append their paths to it');
  return url.href.replace(/\/+$/, '');
}

function invalidUrl(why: string): MusterError {
  return new MusterError('validation_failed', `The endpoint URL ${why}`, { errors: [{ path: '/url', message: why }] });
}

function endpointFromRow(row: EndpointRow): Endpoint {
  return { name: row.name, url: row.url, has_credential: row.credential !== null, created_at: row.created_at, updated_at: row.updated_at };
}

export class EndpointService {
  readonly #tx: Transactor;
  readonly #keyring: Keyring;

  constructor(tx: Transactor, keyring: Keyring) {
    this.#tx = tx;
    this.#keyring = keyring;
  }

  async list(): Promise<Endpoint[]> {
    return (await listEndpointRows(this.#tx.db)).map(endpointFromRow);
  }

  async get(name: string): Promise<Endpoint> {
    const row = await findEndpointRow(this.#tx.db, name);
    if (!row) throw new MusterError('not_found', `No endpoint named ${name}`);
    return endpointFromRow(row);
  }

  /** Creates or replaces an endpoint: without a bearer it has none afterwards. */
  async put(actor: string, name: string, input: EndpointPut): Promise<Endpoint> {
    const url = endpointUrl(input.url);
    const credential = input.bearer === undefined ? null : this.#keyring.seal(input.bearer, endpointCredentialName(name));
    return this.#tx.run(async (tx) => {
      const time = now();
      const existing = await findEndpointRow(tx.db, name);
      const row: EndpointRow = { name, url, credential, created_at: existing?.created_at ?? time, updated_at: time };
      await upsertEndpoint(tx.db, row);
      await tx.emit({
        type: 'endpoint.set',
        actor,
        data: { endpoint: name, url, has_credential: credential !== null, created: existing === undefined },
      });
      return endpointFromRow(row);
    }, 1);
  }

  /** Deletes an endpoint; refused while the current version of a profile sends a hook to it. */
  async delete(actor: string, name: string): Promise<void> {
    await this.#tx.run(async (tx) => {
      if (!(await findEndpointRow(tx.db, name))) throw new MusterError('not_found', `No endpoint named ${name}`);
      const users = (await currentProfileSpecs(tx.db)).filter(({ spec }) => endpointsOf(spec).includes(name)).map((p) => p.name);
      if (users.length > 0)
        throw new MusterError('conflict', `Endpoint ${name} is used by profile ${users.join(', ')}: change those profiles first`, {
          extra: { profiles: users },
        });
      await deleteEndpointRow(tx.db, name);
      await tx.emit({ type: 'endpoint.deleted', actor, data: { endpoint: name } });
    }, 1);
  }

  /** The endpoint with its bearer token opened, for a hook; null when there is none by that name. */
  async resolve(name: string): Promise<ResolvedEndpoint | null> {
    const row = await findEndpointRow(this.#tx.db, name);
    if (!row) return null;
    const bearer = row.credential === null ? null : this.#keyring.open(row.credential, endpointCredentialName(name));
    return { name: row.name, url: row.url, bearer };
  }
}

/** The endpoints a profile's hooks call. */
export function endpointsOf(spec: { account?: { endpoint: string }; checks?: { endpoint: string }[] }): string[] {
  return [...new Set([...(spec.account ? [spec.account.endpoint] : []), ...(spec.checks ?? []).map((c) => c.endpoint)])];
}
