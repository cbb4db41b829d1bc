import type { User, UserUpdate } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { type Role, roles } from '@muster/contract/roles.ts';
import { Command, Option } from 'commander';
import { segment } from '../client.ts';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage, withDatabase } from '../database-options.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatAgo, formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { canPrompt, promptHidden, readPassword } from '../prompt.ts';
import { openSession, wantsJson } from '../session.ts';

function userTable(users: readonly User[]): string {
  return renderTable(
    ['ID', 'USERNAME', 'ROLE', 'EMAIL', 'LAST LOGIN'],
    users.map((u) => [u.id, u.username, u.role, u.email, formatAgo(u.last_login_at)]),
  );
}

function userFields(u: User): string {
  return renderFields([
    ['id', u.id],
    ['username', u.username],
    ['role', u.role],
    ['email', u.email],
    ['last login', formatTime(u.last_login_at)],
    ['created', formatTime(u.created_at)],
    ['updated', formatTime(u.updated_at)],
  ]);
}

function printUser(json: boolean, user: User): void {
  if (json) printJson(user);
  else printText(userFields(user));
}

const roleOption = () => new Option('--role <role>', 'what the user may do').choices(roles);

interface CreateOptions extends DatabaseOptions {
  role: Role;
  email?: string;
  passwordStdin?: boolean;
}

interface SetOptions {
  role?: Role;
  email?: string;
  password?: boolean;
  passwordStdin?: boolean;
}

export function userCommand(): Command {
  const user = new Command('user').description('manage the people who use muster');

  addDatabaseOptions(
    user
      .command('create')
      .description('create a user directly in the database (works before the server runs; use it for the first admin)')
      .argument('<name>', 'username')
      .addOption(roleOption().makeOptionMandatory())
      .option('--email <email>', 'email address')
      .option('--password-stdin', 'read the password from stdin instead of asking twice on the terminal'),
  )
    .addHelpText('after', '\nExample:\n  printf \'%s\' "$PASSWORD" | muster user create alice --role admin --password-stdin')
    .action(async (name: string, options: CreateOptions, command: Command) => {
      const password = await readPassword({ fromStdin: Boolean(options.passwordStdin), confirm: true, what: `password for ${name}` });
      const { loadConfig, createUserDirect } = await loadServerPackage();
      const config = loadConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
      const input = { username: name, role: options.role, password, email: options.email };
      const created = await withDatabase(() => createUserDirect(config, input));
      printUser(wantsJson(command), created);
    });

  addListOptions(user.command('ls').description('list users (admin)')).action(async (options: ListOptions, command: Command) => {
    const session = await openSession(command);
    printListing(session, await fetchList<User>(session, '/users', {}, options), userTable);
  });

  user
    .command('show')
    .description('show one user')
    .argument('<name>', 'username or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printUser(session.json, await session.api.get<User>(`/users/${segment(name)}`));
    });

  user
    .command('set')
    .description("change a user's role, email or password (non-admins: their own password only)")
    .argument('<name>', 'username or id')
    .addOption(roleOption())
    .option('--email <email>', 'new email address ("" to clear)')
    .option('--password', 'ask for a new password on the terminal')
    .option('--password-stdin', 'read the new password from stdin')
    .addHelpText('after', '\nExample:\n  muster user set bob --role operator')
    .action(async (name: string, options: SetOptions, command: Command) => {
      const patch: UserUpdate = {};
      if (options.role) patch.role = options.role;
      if (options.email !== undefined) patch.email = options.email;
      if (options.password || options.passwordStdin) {
        patch.password = await readPassword({ fromStdin: Boolean(options.passwordStdin), confirm: true, what: `new password for ${name}` });
      }
      if (Object.keys(patch).length === 0) {
        throw new MusterError('bad_request', 'nothing to change: give --role, --email, --password or --password-stdin');
      }
      const session = await openSession(command);
      const path = `/users/${segment(name)}`;
      const updated = await session.api.put<User>(path, patch).catch(async (error: unknown) => {
        if (!patch.password || !asksForCurrentPassword(error)) throw error;
        if (options.passwordStdin || !canPrompt()) {
          throw new MusterError(
            'validation_failed',
            `${(error as Error).message}: run \`muster user set ${name} --password\` on a terminal`,
          );
        }
        return session.api.put<User>(path, { ...patch, current_password: await promptHidden('Current password: ') });
      });
      printUser(session.json, updated);
    });

  user
    .command('delete')
    .description('delete a user (the last admin cannot be deleted)')
    .argument('<name>', 'username or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.delete<unknown>(`/users/${segment(name)}`);
      if (session.json) printJson(result ?? { deleted: name });
      else printText(`deleted user ${name}`);
    });

  return user;
}

function asksForCurrentPassword(error: unknown): boolean {
  return error instanceof MusterError && error.errors.some((e) => e.path === '/current_password');
}
