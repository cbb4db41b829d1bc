import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { MusterError } from '@muster/contract';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { noneMatch, parseRange, rangeStillValid } from './range.ts';

/** What sendArtifact needs of an artifact: its digest, its size and where its file is. */
export interface ArtifactFile {
  sha256: string;
  size: number;
  path: string;
}

export interface SendArtifactOptions {
  /** Default: private, cached for a year (content at a sha256 never changes). */
  cacheControl?: string;
  /** Default: application/octet-stream. */
  contentType?: string;
  /** Sent as Content-Disposition: attachment, so that downloads keep a useful name. */
  filename?: string;
}

export const immutableCache = 'max-age=31536000, immutable';

/** RFC 6266: a plain ASCII fallback and the exact name in RFC 5987 encoding. */
function contentDisposition(filename: string): string {
  const base = filename.split('/').pop() || 'artifact';
  const ascii = base.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

async function openBlob(request: FastifyRequest, artifact: ArtifactFile): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(artifact.path, 'r');
  } catch (error) {
    request.log.error({ err: error, sha256: artifact.sha256, path: artifact.path }, 'artifact file missing');
    throw new MusterError(
      'unavailable',
      `The file of artifact ${artifact.sha256} is missing on this server; replicas must share the artifact directory`,
    );
  }
  const { size } = await handle.stat();
  if (size !== artifact.size) {
    await handle.close();
    request.log.error({ sha256: artifact.sha256, path: artifact.path, size, expected: artifact.size }, 'artifact file has the wrong size');
    throw new MusterError('internal', `The file of artifact ${artifact.sha256} is damaged on this server`);
  }
  return handle;
}

/**
 * Answers a GET or HEAD with an artifact's bytes: ETag "<sha256>", If-None-Match (304), one byte range
 * (206, or 416 with a Content-Range that gives the size), If-Range, Accept-Ranges and Content-Length.
 * Several ranges get the whole file. The file is streamed from disk, never read into memory.
 */
export async function sendArtifact(
  request: FastifyRequest,
  reply: FastifyReply,
  artifact: ArtifactFile,
  options: SendArtifactOptions = {},
): Promise<FastifyReply> {
  const etag = `"${artifact.sha256}"`;
  reply.header('etag', etag).header('cache-control', options.cacheControl ?? `private, ${immutableCache}`);
  const handle = await openBlob(request, artifact);
  const headers = request.headers;
  if (noneMatch(headers['if-none-match'], etag)) {
    await handle.close();
    return reply.status(304).send();
  }
  reply.header('accept-ranges', 'bytes');
  const ifRange = headers['if-range'];
  const range = rangeStillValid(Array.isArray(ifRange) ? ifRange.join(',') : ifRange, etag)
    ? parseRange(headers.range, artifact.size)
    : ({ kind: 'whole' } as const);
  if (range.kind === 'unsatisfiable') {
    await handle.close();
    return reply.status(416).header('content-range', `bytes */${artifact.size}`).send();
  }
  reply.header('content-type', options.contentType ?? 'application/octet-stream');
  if (options.filename) reply.header('content-disposition', contentDisposition(options.filename));
  const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, artifact.size - 1];
  if (range.kind === 'partial') reply.status(206).header('content-range', `bytes ${start}-${end}/${artifact.size}`);
  reply.header('content-length', end - start + 1);
  if (request.method === 'HEAD' || artifact.size === 0) {
    await handle.close();
    return reply.send();
  }
  const stream = handle.createReadStream({ start, end });
  stream.on('data', (chunk) => request.server.metrics.artifactBytes.inc(chunk.length));
  return reply.send(stream);
}
