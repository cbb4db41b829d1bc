import { BootNameParam, Rule, RulePut } from '@muster/contract';
import { Type } from 'typebox';
import type { App } from '../../platform/http/types.ts';
import type { RuleService } from './service.ts';

const tags = ['rules'];

export function ruleRoutes(app: App, rules: RuleService): void {
  app.get('/api/v1/rules', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'List rules in the order they are tried', response: { 200: Type.Object({ items: Type.Array(Rule) }) } },
    handler: async () => ({ items: await rules.list() }),
  });
  app.get('/api/v1/rules/:name', {
    config: { action: 'boot.read' },
    schema: { tags, summary: 'Get a rule', params: BootNameParam, response: { 200: Rule } },
    handler: (request) => rules.get(request.params.name),
  });
  app.put('/api/v1/rules/:name', {
    config: { action: 'boot.write' },
    schema: { tags, summary: 'Create or replace a rule', params: BootNameParam, body: RulePut, response: { 200: Rule } },
    handler: (request) => rules.put(request.principal.actor, request.params.name, request.body),
  });
  app.delete('/api/v1/rules/:name', {
    config: { action: 'boot.write' },
    schema: { tags, summary: 'Delete a rule', params: BootNameParam },
    handler: async (request, reply) => {
      await rules.delete(request.principal.actor, request.params.name);
      return reply.status(204).send();
    },
  });
}
