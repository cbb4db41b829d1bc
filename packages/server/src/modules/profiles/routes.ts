import {
  ExplainQuery,
  ExplainRequest,
  Explanation,
  IdParam,
  Profile,
  ProfileApplied,
  ProfileApply,
  ProfileAssign,
  ProfileNameParam,
  ProfileRollback,
  ProfileRollout,
  ProfileRolloutResult,
  ProfileSpec,
  ProfileVersion,
} from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { ExplainService } from './explain.ts';
import type { ProfileService } from './service.ts';

const tags = ['profiles'];

export function profileRoutes(app: App, profiles: ProfileService, machineId: (ref: string) => Promise<string>): void {
  app.post('/api/v1/profiles/:name/assign', {
    config: { action: 'profile.write' },
    schema: {
      tags,
      summary: 'Give machines the profile at a version (the current one by default)',
      params: ProfileNameParam,
      body: ProfileAssign,
      response: { 200: ProfileRolloutResult },
    },
    handler: async (request) => {
      const ids = [];
      for (const ref of request.body.machines) ids.push(await machineId(ref));
      return profiles.assign(request.principal.actor, request.params.name, ids, request.body.version);
    },
  });

  app.get('/api/v1/schemas/profile', {
    config: { action: 'profile.read' },
    schema: { tags, summary: "The JSON Schema of a profile's spec (what `muster profile apply` validates against)" },
    handler: async () => ({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'muster profile', ...ProfileSpec }),
  });

  app.get('/api/v1/profiles', {
    config: { action: 'profile.read' },
    schema: { tags, summary: 'List profiles with their current version', response: { 200: Type.Object({ items: Type.Array(Profile) }) } },
    handler: async () => ({ items: await profiles.list() }),
  });

  app.get('/api/v1/profiles/:name', {
    config: { action: 'profile.read' },
    schema: { tags, summary: 'Get a profile', params: ProfileNameParam, response: { 200: Profile } },
    handler: (request) => profiles.get(request.params.name),
  });

  app.put('/api/v1/profiles/:name', {
    config: { action: 'profile.write' },
    schema: {
      tags,
      summary: 'Apply a spec: a new version when it differs from the current one',
      params: ProfileNameParam,
      body: ProfileApply,
      response: { 200: ProfileApplied },
    },
    handler: (request) => profiles.apply(request.principal.actor, request.params.name, request.body.spec, request.body.comment),
  });

  app.delete('/api/v1/profiles/:name', {
    config: { action: 'profile.write' },
    schema: { tags, summary: 'Delete a profile no machine, rule or token uses', params: ProfileNameParam },
    handler: async (request, reply) => {
      await profiles.delete(request.principal.actor, request.params.name);
      return reply.status(204).send();
    },
  });

  app.get('/api/v1/profiles/:name/versions', {
    config: { action: 'profile.read' },
    schema: {
      tags,
      summary: 'Every version of a profile, newest first',
      params: ProfileNameParam,
      response: { 200: Type.Object({ items: Type.Array(ProfileVersion) }) },
    },
    handler: async (request) => ({ items: await profiles.history(request.params.name) }),
  });

  app.get('/api/v1/profiles/:name/versions/:version', {
    config: { action: 'profile.read' },
    schema: {
      tags,
      summary: 'One version of a profile',
      params: Type.Object({ name: ProfileNameParam.properties.name, version: Type.Integer({ minimum: 1 }) }),
      response: { 200: ProfileVersion },
    },
    handler: (request) => profiles.version(request.params.name, request.params.version),
  });

  app.post('/api/v1/profiles/:name/rollback', {
    config: { action: 'profile.write' },
    schema: {
      tags,
      summary: 'Make an earlier version current again, as a new version',
      params: ProfileNameParam,
      body: ProfileRollback,
      response: { 200: ProfileApplied },
    },
    handler: (request) => profiles.rollback(request.principal.actor, request.params.name, request.body.version, request.body.comment),
  });

  app.post('/api/v1/profiles/:name/rollout', {
    config: { action: 'profile.write' },
    schema: {
      tags,
      summary: 'Move machines on the profile (those with the labels given) to its current version',
      params: ProfileNameParam,
      body: ProfileRollout,
      response: { 200: ProfileRolloutResult },
    },
    handler: (request) =>
      profiles.rollout(request.principal.actor, request.params.name, request.body.labels ?? {}, request.body.dry_run ?? false),
  });
}

/** `machineId` resolves a machine reference (an id or an identifier such as serial:ABC) to its id. */
export function explainRoutes(app: App, explain: ExplainService, machineId: (ref: string) => Promise<string>): void {
  app.get('/api/v1/machines/:id/explain', {
    config: { action: 'machine.read' },
    schema: {
      tags: ['machines'],
      summary: 'Which rule places the machine and why the others do not, its profile version and what it renders to (secrets redacted)',
      params: IdParam,
      querystring: ExplainQuery,
      response: { 200: Explanation },
    },
    handler: async (request) => explain.machine(await machineId(request.params.id), request.query.door),
  });

  app.post('/api/v1/explain', {
    config: { action: 'machine.read' },
    schema: {
      tags: ['machines'],
      summary: 'Explain a machine that does not exist yet, from the identifiers, facts and labels a door would see; changes nothing',
      body: ExplainRequest,
      response: { 200: Explanation },
    },
    handler: (request) => explain.arrival(request.body),
  });
}
