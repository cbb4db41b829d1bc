import { BootName, BootNameParam, Page, PageQuery, PiMachine, PiTree, PiTreePut } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { PiService } from './service.ts';

const tags = ['pi'];

export function piRoutes(app: App, pi: PiService): void {
  app.get('/api/v1/pi/trees', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'List Pi boot trees', response: { 200: Type.Object({ items: Type.Array(PiTree) }) } },
    handler: async () => ({ items: await pi.listTrees() }),
  });
  app.get('/api/v1/pi/trees/:name', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'Get a Pi boot tree', params: BootNameParam, response: { 200: PiTree } },
    handler: (request) => pi.getTree(request.params.name),
  });
  app.put('/api/v1/pi/trees/:name', {
    config: { action: 'boot.write' },
    schema: {
      tags,
      summary: 'Create or replace a Pi boot tree from uploaded artifacts',
      description: 'Each file names an artifact by sha256. With serial_pattern, a rule of the same name sends unseen serials here.',
      params: BootNameParam,
      body: PiTreePut,
      response: { 200: PiTree },
    },
    handler: (request) => pi.putTree(request.principal.actor, request.params.name, request.body),
  });
  app.delete('/api/v1/pi/trees/:name', {
    config: { action: 'boot.write' },
    schema: { tags, summary: 'Delete a Pi boot tree no machine uses', params: BootNameParam },
    handler: async (request, reply) => {
      await pi.deleteTree(request.principal.actor, request.params.name);
      return reply.status(204).send();
    },
  });
  app.get('/api/v1/pi/machines', {
    config: { action: 'boot.read' },
    schema: {
      tags,
      summary: 'List machines that netboot as Pis, by serial',
      querystring: Type.Object({ ...PageQuery, tree: Type.Optional(BootName) }, { additionalProperties: false }),
      response: { 200: Page(PiMachine) },
    },
    handler: (request) => pi.listPis(request.query),
  });
}
