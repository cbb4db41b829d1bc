import type { Endpoint, EndpointPut } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { Command } from 'commander';
import { segment } from '../client.ts';
import { formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { readStdin } from '../prompt.ts';
import { openSession } from '../session.ts';

function endpointFields(e: Endpoint): string {
  return renderFields([
    ['name', e.name],
    ['url', e.url],
    ['bearer', e.has_credential ? 'set (sealed)' : 'none'],
    ['updated', formatTime(e.updated_at)],
  ]);
}

export function endpointCommand(): Command {
  const endpoint = new Command('endpoint').description(
    'HTTP endpoints the hooks of profiles may call (admin): profiles name an endpoint, never a URL',
  );

  endpoint
    .command('set')
    .description('create or replace an endpoint; without --bearer-stdin it has no bearer token')
    .argument('<name>', 'endpoint name, as profiles name it')
    .argument('<url>', 'http:// or https:// URL the hooks append their paths to')
    .option('--bearer-stdin', 'read a bearer token from stdin (sent as Authorization: Bearer, stored sealed)')
    .addHelpText('after', '\nExample:\n  muster endpoint set admin-api https://admin.internal.example.com --bearer-stdin < admin-token')
    .action(async (name: string, url: string, options: { bearerStdin?: boolean }, command: Command) => {
      const body: EndpointPut = { url };
      if (options.bearerStdin) {
        const bearer = (await readStdin()).trim();
        if (bearer === '') throw new MusterError('bad_request', '--bearer-stdin: stdin holds no token');
        body.bearer = bearer;
      }
      const session = await openSession(command);
      const saved = await session.api.put<Endpoint>(`/endpoints/${segment(name)}`, body);
      if (session.json) printJson(saved);
      else printText(endpointFields(saved));
    });

  endpoint
    .command('ls')
    .description('list endpoints (bearer tokens are never shown)')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const { items } = await session.api.get<{ items: Endpoint[] }>('/endpoints');
      if (session.json) printJson(items);
      else
        printText(
          renderTable(
            ['NAME', 'URL', 'BEARER', 'UPDATED'],
            items.map((e) => [e.name, e.url, e.has_credential ? 'set' : 'none', formatTime(e.updated_at)]),
          ),
        );
    });

  endpoint
    .command('rm')
    .description('delete an endpoint; refused while the current version of a profile calls it')
    .argument('<name>', 'endpoint name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/endpoints/${segment(name)}`);
      if (session.json) printJson({ deleted: name });
      else printText(`deleted endpoint ${name}`);
    });

  return endpoint;
}
