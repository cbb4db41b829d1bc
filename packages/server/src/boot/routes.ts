import {
  BootScript,
  BootScriptPut,
  BootSession,
  BootSessionDetail,
  BootSessionQuery,
  bootScriptNames,
  IdParam,
  Page,
} from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../platform/http/types.ts';
import type { BootTimeline } from './core/timeline.ts';
import type { BootScriptService } from './ipxe/scripts.ts';

const tags = ['boot'];
const ScriptParam = Type.Object({ name: Type.Enum(bootScriptNames) });

export function bootRoutes(app: App, timeline: BootTimeline, scripts: BootScriptService): void {
  app.get('/api/v1/machines/:id/boot-sessions', {
    config: { action: 'boot.read' },
    schema: {
      tags,
      summary: 'A machine’s boot sessions, newest first',
      description: 'Requests at the front doors, grouped: a pause of five minutes starts a new session.',
      params: IdParam,
      querystring: BootSessionQuery,
      response: { 200: Page(BootSession) },
    },
    handler: (request) => timeline.sessions(request.params.id, request.query.cursor, request.query.limit),
  });
  app.get('/api/v1/boot-sessions/:id', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'One boot session with its timeline of requests', params: IdParam, response: { 200: BootSessionDetail } },
    handler: (request) => timeline.session(request.params.id),
  });
  app.get('/api/v1/boot/scripts', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'The iPXE script templates', response: { 200: Type.Object({ items: Type.Array(BootScript) }) } },
    handler: async () => ({ items: await scripts.list() }),
  });
  app.get('/api/v1/boot/scripts/:name', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'One iPXE script template', params: ScriptParam, response: { 200: BootScript } },
    handler: (request) => scripts.get(request.params.name),
  });
  app.put('/api/v1/boot/scripts/:name', {
    config: { action: 'boot.write' },
    schema: {
      tags,
      summary: 'Set an iPXE script template (Liquid)',
      params: ScriptParam,
      body: BootScriptPut,
      response: { 200: BootScript },
    },
    handler: (request) => scripts.put(request.principal.actor, request.params.name, request.body.body),
  });
  app.delete('/api/v1/boot/scripts/:name', {
    config: { action: 'boot.write' },
    schema: { tags, summary: 'Go back to the built-in script', params: ScriptParam, response: { 200: BootScript } },
    handler: (request) => scripts.reset(request.principal.actor, request.params.name),
  });
}
