import type { ApiToken, ApiTokenCreate } from '@muster/contract';
import { type Role, roles } from '@muster/contract/roles.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatAgo, formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

function tokenTable(tokens: readonly ApiToken[]): string {
  return renderTable(
    ['ID', 'NAME', 'ROLE', 'PREFIX', 'EXPIRES', 'LAST USED', 'REVOKED'],
    tokens.map((t) => [
      t.id,
      t.name,
      t.role,
      t.prefix,
      t.expires_at ? formatTime(t.expires_at) : 'never',
      formatAgo(t.last_used_at),
      formatTime(t.revoked_at),
    ]),
  );
}

function tokenFields(t: ApiToken & { token?: string }): string {
  return renderFields([
    ['token', t.token],
    ['id', t.id],
    ['name', t.name],
    ['role', t.role],
    ['prefix', t.prefix],
    ['expires', t.expires_at ? formatTime(t.expires_at) : 'never'],
    ['last used', formatTime(t.last_used_at)],
    ['revoked', formatTime(t.revoked_at)],
    ['created', formatTime(t.created_at)],
  ]);
}

function parseExpiresIn(value: string): string {
  if (!/^[0-9]+(s|m|h|d)$/.test(value)) throw new InvalidArgumentError('expected a number and a unit, e.g. 90d, 12h, 30m');
  return value;
}

interface CreateOptions {
  role?: Role;
  expiresIn?: string;
}

export function tokenCommand(): Command {
  const token = new Command('token').description('manage API tokens for scripts and CI');

  token
    .command('create')
    .description('create an API token for yourself; the secret is shown only once')
    .argument('<name>', 'what the token is for, e.g. ci')
    .addOption(new Option('--role <role>', 'role of the token: at most your own (default: your role)').choices(roles))
    .addOption(new Option('--expires-in <duration>', 'lifetime such as 90d, 12h or 30m (default: never expires)').argParser(parseExpiresIn))
    .addHelpText('after', '\nExample:\n  muster token create ci --role operator --expires-in 90d')
    .action(async (name: string, options: CreateOptions, command: Command) => {
      const session = await openSession(command);
      const body: ApiTokenCreate = { name, role: options.role, expires_in: options.expiresIn };
      const created = await session.api.post<ApiToken & { token: string }>('/tokens', body);
      if (session.json) return printJson(created);
      printText(tokenFields(created));
      printNote('The token is shown only this once: store it now (e.g. as MUSTER_TOKEN in your CI secrets).');
    });

  addListOptions(token.command('ls').description('list API tokens (yours; admins see everyone’s)')).action(
    async (options: ListOptions, command: Command) => {
      const session = await openSession(command);
      printListing(session, await fetchList<ApiToken>(session, '/tokens', {}, options), tokenTable);
    },
  );

  token
    .command('revoke')
    .description('revoke an API token at once')
    .argument('<id>', 'token id (see `muster token ls`)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const revoked = await session.api.delete<ApiToken | undefined>(`/tokens/${segment(id)}`);
      if (session.json) return printJson(revoked ?? { revoked: id });
      printText(`revoked token ${id}${revoked?.name ? ` (${revoked.name})` : ''}`);
    });

  return token;
}
