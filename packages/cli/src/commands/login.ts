import type { User } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { Command } from 'commander';
import { readStoredLogin, writeStoredLogin } from '../config-store.ts';
import { formatTime, printJson, printText } from '../output.ts';
import { canPrompt, promptLine, readPassword } from '../prompt.ts';
import { openSession, wantsJson } from '../session.ts';

interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
}

interface LoginResponse {
  token: string;
  expires_at: string;
  user: User;
}

async function askUsername(suggestion: string | undefined): Promise<string> {
  if (!canPrompt()) throw new MusterError('bad_request', 'no terminal to ask for the username: give --username');
  const answer = await promptLine(suggestion ? `Username [${suggestion}]: ` : 'Username: ');
  const username = answer || suggestion;
  if (!username) throw new MusterError('bad_request', 'a username is needed to log in');
  return username;
}

export function loginCommand(): Command {
  return new Command('login')
    .description('log in to a server and remember it and the session token (use the global --server to choose the server)')
    .option('--username <name>', 'who to log in as (asked on the terminal when not given)')
    .option('--password-stdin', 'read the password from stdin')
    .addHelpText('after', '\nExample:\n  muster --server http://muster.lan:8080 login --username alice')
    .action(async (options: LoginOptions, command: Command) => {
      const session = await openSession(command);
      const username = options.username ?? (await askUsername(session.stored.username));
      const password = await readPassword({ fromStdin: Boolean(options.passwordStdin), confirm: false, what: `password for ${username}` });
      const response = await session.api.post<LoginResponse>('/login', { username, password });
      const path = await writeStoredLogin({ server: session.server, token: response.token, username: response.user.username });
      if (session.json) return printJson(response);
      printText(
        `Logged in to ${session.server} as ${response.user.username} (${response.user.role}) until ${formatTime(response.expires_at)}; saved in ${path}`,
      );
    });
}

export function logoutCommand(): Command {
  return new Command('logout')
    .description('forget the stored session token (the server and username are kept for the next login)')
    .addHelpText('after', '\nExample:\n  muster logout')
    .action(async (_options: unknown, command: Command) => {
      const { token, ...rest } = await readStoredLogin();
      if (token) await writeStoredLogin(rest);
      if (wantsJson(command)) return printJson({ logged_out: Boolean(token), server: rest.server ?? null });
      printText(token ? `Logged out of ${rest.server ?? 'the server'}` : 'Not logged in; nothing to forget');
    });
}
