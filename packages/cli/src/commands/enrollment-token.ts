import type { CreatedEnrollmentToken, EnrollmentToken, EnrollmentTokenCreate } from '@muster/contract';
import { Command, Option } from 'commander';
import { collect, parseLabel } from '../arguments.ts';
import { segment } from '../client.ts';
import { formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

// Enrollment tokens (docs/identity.md): not to be confused with API tokens (muster token).

export function enrollmentTokenCommand(): Command {
  const command = new Command('enrollment-token').description(
    'tokens devices claim with (baked into an image): fleet, labels, uses, expiry, approval',
  );

  command
    .command('create')
    .description('create an enrollment token; its secret is printed this once')
    .argument('<name>', 'a name for it, e.g. the image it goes into')
    .option('--fleet <fleet>', 'machines claimed with it join this fleet (hostnames FLEET-N)')
    .option('--label <key=value>', 'a label machines claimed with it get; repeatable', collect(parseLabel), [])
    .option('--profile <profile>', 'machines claimed with it get this profile')
    .addOption(
      new Option(
        '--approval <mode>',
        'rules: the matching rule decides, pending when none does; auto: enrolled at once unless a rule says pending; manual: each claim waits for muster machine approve',
      )
        .choices(['rules', 'auto', 'manual'])
        .default('rules'),
    )
    .option('--max-uses <n>', 'how many devices may claim with it', (v) => Number.parseInt(v, 10))
    .option('--expires-in <duration>', 'how long it works, e.g. 30d, 12h')
    .addHelpText(
      'after',
      '\nExample:\n  muster enrollment-token create jetson-2026-12 --fleet edge --label site=oslo --approval auto --max-uses 500 --expires-in 30d',
    )
    .action(
      async (
        name: string,
        options: {
          fleet?: string;
          profile?: string;
          label: [string, string][];
          approval: 'auto' | 'manual' | 'rules';
          maxUses?: number;
          expiresIn?: string;
        },
        sub: Command,
      ) => {
        const session = await openSession(sub);
        const body: EnrollmentTokenCreate = {
          name,
          fleet: options.fleet,
          profile: options.profile,
          labels: Object.fromEntries(options.label),
          approval: options.approval,
          max_uses: options.maxUses,
          expires_in: options.expiresIn,
        };
        const created = await session.api.post<CreatedEnrollmentToken>('/enrollment-tokens', body);
        if (session.json) return printJson(created);
        printText(created.token);
        printNote(
          `Enrollment token ${created.name} created; the secret above is shown this once. Devices claim with POST /api/v1/claims/token.`,
        );
      },
    );

  command
    .command('ls')
    .description('list enrollment tokens (never their secrets)')
    .addHelpText('after', '\nExample:\n  muster enrollment-token ls')
    .action(async (_options: unknown, sub: Command) => {
      const session = await openSession(sub);
      const tokens = await session.api.get<EnrollmentToken[]>('/enrollment-tokens');
      if (session.json) return printJson(tokens);
      printText(
        renderTable(
          ['name', 'fleet', 'approval', 'uses', 'expires', 'revoked'],
          tokens.map((t) => [
            t.name,
            t.fleet,
            t.approval,
            `${t.uses}/${t.max_uses ?? '∞'}`,
            formatTime(t.expires_at),
            formatTime(t.revoked_at),
          ]),
        ),
      );
    });

  command
    .command('revoke')
    .description('revoke an enrollment token: claims with it are refused from now on')
    .argument('<name>', 'the token’s name')
    .addHelpText('after', '\nExample:\n  muster enrollment-token revoke jetson-2026-12')
    .action(async (name: string, _options: unknown, sub: Command) => {
      const session = await openSession(sub);
      const token = await session.api.post<EnrollmentToken>(`/enrollment-tokens/${segment(name)}/revoke`);
      if (session.json) return printJson(token);
      printText(renderFields([['revoked', `${token.name} at ${formatTime(token.revoked_at)}`]]));
    });

  return command;
}
