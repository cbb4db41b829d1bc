import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Artifact } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import type { Command } from 'commander';
import { type ApiClient, connectionError, type Query, responseError, segment } from './client.ts';
import { globalOptions, openSession, resolveConnection, type Session } from './session.ts';

/**
 * What artifact transfers need: the JSON client for metadata, and raw requests (a streamed body, a
 * streamed answer) to the same server with the same token.
 */
export class ArtifactClient {
  readonly api: ApiClient;
  readonly session: Session;
  readonly #token: string | undefined;

  constructor(session: Session, token: string | undefined) {
    this.session = session;
    this.api = session.api;
    this.#token = token;
  }

  /** A request whose body or answer is bytes; an error answer becomes a MusterError as in ApiClient. */
  async raw(
    method: string,
    path: string,
    query: Query,
    init: { body?: RequestInit['body']; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const url = this.api.url(path, query);
    const headers: Record<string, string> = { accept: 'application/octet-stream, application/problem+json', ...init.headers };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: init.body, duplex: init.body ? 'half' : undefined } as RequestInit);
    } catch (error) {
      throw connectionError(this.api.server, error);
    }
    if (!response.ok) {
      const error = await responseError(response, `${method} ${url.pathname}`);
      if (error.code === 'unauthenticated' && !this.#token) {
        throw new MusterError(
          'unauthenticated',
          `not logged in to ${this.api.server}: run \`muster login\`, or pass --token or MUSTER_TOKEN`,
        );
      }
      throw error;
    }
    return response;
  }
}

/** The artifact client for a command, with the server and token its session resolved. */
export async function openArtifactClient(command: Command): Promise<ArtifactClient> {
  const session = await openSession(command);
  return new ArtifactClient(session, resolveConnection(globalOptions(command), session.stored).token);
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface UploadOptions {
  /** Also publish the artifact under this name (e.g. ipxe.efi, registration/bzImage). */
  publish?: string;
  /** Send the file even when the server lists its content (a replica with its own artifact directory). */
  always?: boolean;
  /** Called as bytes go out: (sent, total). */
  onProgress?: (sent: number, total: number) => void;
}

export interface UploadResult {
  artifact: Artifact;
  /** False when the server had the content already and nothing was sent. */
  uploaded: boolean;
}

/**
 * Uploads a file unless the server has its content already (or `always`): the file is hashed first and
 * the server asked for that sha256. The upload names the sha256, so a file that changes meanwhile is refused.
 */
export async function uploadArtifact(client: ArtifactClient, path: string, options: UploadOptions = {}): Promise<UploadResult> {
  const info = await stat(path);
  if (!info.isFile()) throw new MusterError('bad_request', `${path} is not a regular file`);
  const sha256 = await fileSha256(path);
  const existing = options.always
    ? null
    : await client.api.get<Artifact>(`/artifacts/${sha256}`).catch((error: unknown) => {
        if (error instanceof MusterError && error.code === 'not_found') return null;
        throw error;
      });
  if (existing) {
    if (options.publish === undefined || existing.names.includes(options.publish)) return { artifact: existing, uploaded: false };
    await client.api.put(`/artifact-names/${segment(options.publish)}`, { sha256 });
    return { artifact: await client.api.get<Artifact>(`/artifacts/${sha256}`), uploaded: false };
  }
  let sent = 0;
  const counted = Readable.from(
    (async function* () {
      for await (const chunk of createReadStream(path)) {
        sent += (chunk as Buffer).length;
        options.onProgress?.(sent, info.size);
        yield chunk as Buffer;
      }
    })(),
  );
  const response = await client.raw(
    'POST',
    '/artifacts',
    { name: basename(path), sha256, publish: options.publish },
    {
      body: Readable.toWeb(counted) as ReadableStream,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(info.size) },
    },
  );
  return { artifact: (await response.json()) as Artifact, uploaded: true };
}

/**
 * Downloads an artifact to `path` ("-" for stdout), checking its sha256 on the way. A file is written
 * next to its destination and renamed into place only when complete and correct.
 */
export async function downloadArtifact(
  client: ArtifactClient,
  artifact: Artifact,
  path: string,
  onProgress?: (received: number) => void,
): Promise<void> {
  const response = await client.raw('GET', `/artifacts/${artifact.sha256}/content`, {});
  if (!response.body) throw new MusterError('internal', `the server sent no content for ${artifact.sha256}`);
  const hash = createHash('sha256');
  let received = 0;
  const tmp = path === '-' ? null : join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.part`);
  const target: Writable = tmp ? createWriteStream(tmp, { flags: 'wx' }) : process.stdout;
  try {
    await pipeline(
      Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          received += chunk.length;
          onProgress?.(received);
          yield chunk;
        }
      },
      target,
      { end: tmp !== null },
    );
    const got = hash.digest('hex');
    if (got !== artifact.sha256)
      throw new MusterError('internal', `the download's sha256 is ${got}, not ${artifact.sha256}; nothing was kept`);
    if (tmp) await rename(tmp, path);
  } catch (error) {
    if (tmp) await rm(tmp, { force: true });
    throw error;
  }
}
