import type { Readable } from 'node:stream';
import {
  Artifact,
  ArtifactListQuery,
  ArtifactNameEntry,
  ArtifactNameParam,
  ArtifactParam,
  ArtifactPublish,
  ArtifactUploadQuery,
  MusterError,
  Page,
} from '@muster/contract';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import { validatorCompiler } from '../../platform/http/validation.ts';
import { sendArtifact } from './send.ts';
import type { ArtifactService } from './service.ts';

const tags = ['artifacts'];
const uploadType = 'application/octet-stream';

/** The upload route takes the raw body as a stream: no JSON, no 1 MiB limit, nothing buffered. */
function uploadRoute(scope: App, artifacts: ArtifactService): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(uploadType, (_request, payload, done) => done(null, payload));
  scope.addContentTypeParser('*', (request, _payload, done) =>
    done(
      new MusterError(
        'unsupported_media_type',
        `Send the file's bytes as the body with Content-Type: ${uploadType}, not ${request.headers['content-type'] ?? 'nothing'}`,
      ),
    ),
  );
  // A refused upload is answered before its body is read; closing the connection spares reading the rest.
  scope.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });
  scope.post('/api/v1/artifacts', {
    config: { action: 'artifact.write' },
    schema: {
      tags,
      summary: 'Upload an artifact (raw body); 201 when new, 200 when the same content is there already',
      consumes: [uploadType],
      querystring: ArtifactUploadQuery,
      body: Type.String({ format: 'binary', description: 'The file, streamed as is' }),
      response: { 200: Artifact, 201: Artifact },
    },
    // The body is a stream, checked while it is stored; the query is validated as everywhere else.
    validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : validatorCompiler(route)),
    handler: async (request, reply) => {
      const length = Number(request.headers['content-length']);
      if (length > artifacts.maxBytes) {
        throw new MusterError('payload_too_large', `The artifact is ${length} bytes; the limit is ${artifacts.maxBytes}`);
      }
      if (request.body === undefined) {
        throw new MusterError('unsupported_media_type', `Send the file's bytes as the body with Content-Type: ${uploadType}`);
      }
      const body = request.body as unknown as Readable;
      const { artifact, created } = await artifacts.addStream(request.principal.actor, body.iterator({ destroyOnReturn: false }), {
        name: request.query.name,
        expectedSha256: request.query.sha256,
        publish: request.query.publish,
      });
      return reply.status(created ? 201 : 200).send(artifact);
    },
  });
}

export function artifactRoutes(app: App, artifacts: ArtifactService): void {
  app.register(async (scope: FastifyInstance) => uploadRoute(scope as unknown as App, artifacts));
  app.addHook('onReady', async () => {
    const removed = await artifacts.sweepIncoming().catch((error) => app.log.warn({ err: error }, 'cannot sweep the artifact uploads'));
    if (removed) app.log.info({ removed }, 'removed uploads interrupted by a crash');
  });

  app.get('/api/v1/artifacts', {
    config: { action: 'artifact.read' },
    schema: { tags, summary: 'List artifacts, newest first', querystring: ArtifactListQuery, response: { 200: Page(Artifact) } },
    handler: (request) => artifacts.list(request.query.cursor, request.query.limit, request.query.total),
  });
  app.get('/api/v1/artifacts/:sha256', {
    config: { action: 'artifact.read' },
    schema: { tags, summary: 'Get an artifact and the names published for it', params: ArtifactParam, response: { 200: Artifact } },
    handler: (request) => artifacts.get(request.params.sha256),
  });
  // HEAD is its own route, declared first: Fastify's automatic one would send Content-Length: 0. Being
  // HEAD alone, it stays out of the OpenAPI document, like every HEAD.
  for (const method of ['head', 'get'] as const) {
    app[method]('/api/v1/artifacts/:sha256/content', {
      config: { action: 'artifact.read' },
      schema: {
        tags,
        summary: "Download an artifact's bytes (Range, If-Range, If-None-Match; ETag is the quoted sha256)",
        produces: [uploadType],
        params: ArtifactParam,
      },
      handler: async (request, reply) => {
        const artifact = await artifacts.get(request.params.sha256);
        return sendArtifact(request, reply, artifact, { filename: artifact.name || artifact.sha256 });
      },
    });
  }
  app.delete('/api/v1/artifacts/:sha256', {
    config: { action: 'artifact.write' },
    schema: { tags, summary: 'Delete an artifact that no name and no Pi tree uses', params: ArtifactParam },
    handler: async (request, reply) => {
      await artifacts.delete(request.principal.actor, request.params.sha256);
      return reply.status(204).send();
    },
  });

  app.get('/api/v1/artifact-names', {
    config: { action: 'artifact.read' },
    schema: { tags, summary: 'List published names', querystring: ArtifactListQuery, response: { 200: Page(ArtifactNameEntry) } },
    handler: (request) => artifacts.listNames(request.query.cursor, request.query.limit, request.query.total),
  });
  app.get('/api/v1/artifact-names/:name', {
    config: { action: 'artifact.read' },
    schema: {
      tags,
      summary: 'Get the artifact a name points at (a / in the name is sent as %2F)',
      params: ArtifactNameParam,
      response: { 200: ArtifactNameEntry },
    },
    handler: (request) => artifacts.getName(request.params.name),
  });
  app.put('/api/v1/artifact-names/:name', {
    config: { action: 'artifact.write' },
    schema: {
      tags,
      summary: 'Publish an artifact under a name, or point the name at another one (a / in the name is sent as %2F)',
      params: ArtifactNameParam,
      body: ArtifactPublish,
      response: { 200: ArtifactNameEntry, 201: ArtifactNameEntry },
    },
    handler: async (request, reply) => {
      const { entry, created } = await artifacts.publish(request.principal.actor, request.params.name, request.body.sha256);
      return reply.status(created ? 201 : 200).send(entry);
    },
  });
  app.delete('/api/v1/artifact-names/:name', {
    config: { action: 'artifact.write' },
    schema: { tags, summary: 'Remove a published name (the artifact stays)', params: ArtifactNameParam },
    handler: async (request, reply) => {
      await artifacts.unpublish(request.principal.actor, request.params.name);
      return reply.status(204).send();
    },
  });
}
