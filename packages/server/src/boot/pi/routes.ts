import { createReadStream } from 'node:fs';
import { PiProvision, PiProvisionResult, PiSerial, PiSerialFiles } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { PiBoot } from './door.ts';

const tags = ['pi'];
const SerialParam = Type.Object({ serial: PiSerial });

/** What a serial gets, and placing one by hand: the Pi door's own API (tree CRUD is modules/pi). */
export function piBootRoutes(app: App, pi: PiBoot): void {
  app.post('/api/v1/pi/provision', {
    config: { action: 'boot.write' },
    schema: {
      tags,
      summary: 'Provision a Pi serial by hand',
      description: 'Creates the machine when unseen and sets its tree: the one given, else the one its rule names.',
      body: PiProvision,
      response: { 200: PiProvisionResult, 201: PiProvisionResult },
    },
    handler: async (request, reply) => {
      const result = await pi.provision(request.principal.actor, request.body.serial, request.body.tree);
      return reply.status(result.created ? 201 : 200).send(result);
    },
  });
  app.get('/api/v1/pi/serials/:serial/files', {
    config: { action: 'boot.read' },
    schema: {
      tags,
      summary: 'What a serial will get: its tree and files, templates rendered for it',
      params: SerialParam,
      response: { 200: PiSerialFiles },
    },
    handler: (request) => pi.serialFiles(request.params.serial),
  });
  app.get('/api/v1/pi/serials/:serial/files/*', {
    config: { action: 'boot.read' },
    schema: {
      tags,
      summary: 'One file as a serial gets it',
      params: Type.Object({ serial: PiSerial, '*': Type.String({ minLength: 1, maxLength: 255 }) }),
    },
    handler: async (request, reply) => {
      const file = await pi.serialFile(request.params.serial, request.params['*']);
      reply.type('application/octet-stream').header('etag', `"${file.entry.sha256}"`).header('content-length', file.entry.size);
      return reply.send('blob' in file ? createReadStream(file.blob) : file.bytes);
    },
  });
}
