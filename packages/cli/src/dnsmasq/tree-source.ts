import type { PiProvision, PiProvisionResult, PiSerialFiles, PiTree } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { type ApiClient, connectionError, responseError, segment } from '../client.ts';

/** Bytes of one file, as one piece or as a stream of pieces. */
export type FileBody = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** What the materialiser needs from muster: place a serial, list its files, hand out their bytes. */
export interface PiTreeSource {
  /** Makes the serial a machine (or finds it) by the rules; refused serials throw `boot_refused`. */
  provision(serial: string): Promise<PiProvisionResult>;
  /** The files of the serial's tree; for templates, sha256 and size are of the bytes this serial gets. */
  files(serial: string): Promise<PiSerialFiles>;
  /** One file as this serial gets it (templates rendered). */
  file(serial: string, path: string): Promise<FileBody>;
}

/** What lets the cache be filled before any Pi asks: the trees, and artifacts by hash. */
export interface PiTreeCatalog {
  trees(): Promise<PiTree[]>;
  artifact(sha256: string): Promise<FileBody>;
}

const fileTimeoutMs = 10 * 60_000;

/** The PiTreeSource of a muster server, over /api/v1/pi (authenticated like every other CLI command). */
export class HttpPiTreeSource implements PiTreeSource, PiTreeCatalog {
  readonly #api: ApiClient;
  readonly #token: string | undefined;

  constructor(api: ApiClient, token: string | undefined) {
    this.#api = api;
    this.#token = token;
  }

  provision(serial: string): Promise<PiProvisionResult> {
    // No tree: the rules decide, so a serial a rule refuses is refused here too.
    const body: PiProvision = { serial };
    return this.#api.post<PiProvisionResult>('/pi/provision', body);
  }

  files(serial: string): Promise<PiSerialFiles> {
    return this.#api.get<PiSerialFiles>(`/pi/serials/${segment(serial)}/files`);
  }

  file(serial: string, path: string): Promise<FileBody> {
    return this.#bytes(`/pi/serials/${segment(serial)}/files/${path.split('/').map(segment).join('/')}`);
  }

  async trees(): Promise<PiTree[]> {
    return (await this.#api.get<{ items: PiTree[] }>('/pi/trees')).items;
  }

  artifact(sha256: string): Promise<FileBody> {
    return this.#bytes(`/artifacts/${segment(sha256)}/content`);
  }

  /** A body of bytes, streamed: ApiClient reads JSON and text only. */
  async #bytes(path: string): Promise<FileBody> {
    const url = this.#api.url(path);
    const headers: Record<string, string> = { accept: 'application/octet-stream, application/problem+json' };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(fileTimeoutMs) });
    } catch (error) {
      throw connectionError(this.#api.server, error);
    }
    if (!response.ok) throw await responseError(response, `GET ${url.pathname}`);
    if (!response.body) throw new MusterError('internal', `GET ${url.pathname} answered without a body`);
    return response.body;
  }
}
