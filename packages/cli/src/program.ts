import { Command, type Command as CommandType, Option } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { artifactCommand } from './commands/artifact.ts';
import { backupCommand } from './commands/backup.ts';
import { bootCommand } from './commands/boot.ts';
import { caCommand } from './commands/ca.ts';
import { dnsmasqCommand } from './commands/dnsmasq.ts';
import { endpointCommand } from './commands/endpoint.ts';
import { enrollmentTokenCommand } from './commands/enrollment-token.ts';
import { fleetCommand } from './commands/fleet.ts';
import { groupCommand } from './commands/group.ts';
import { jobCommand } from './commands/job.ts';
import { loginCommand, logoutCommand } from './commands/login.ts';
import { machineCommand } from './commands/machine.ts';
import { masterKeyCommand } from './commands/master-key.ts';
import { migrateCommand } from './commands/migrate.ts';
import { piCommand } from './commands/pi.ts';
import { explainCommand, profileCommand } from './commands/profile.ts';
import { ruleCommand } from './commands/rule.ts';
import { serveCommand } from './commands/serve.ts';
import { simCommand } from './commands/sim.ts';
import { stageCommand } from './commands/stage.ts';
import { tokenCommand } from './commands/token.ts';
import { userCommand } from './commands/user.ts';
import { oneLine } from './failure.ts';
import { defaultServer } from './session.ts';

function eachCommand(command: CommandType, visit: (command: CommandType) => void): void {
  visit(command);
  for (const sub of command.commands) eachCommand(sub, visit);
}

function commandPath(command: CommandType): string {
  const names: string[] = [];
  for (let c: CommandType | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Usage errors as one line, `muster: …`, naming the help to read. */
function reportUsageErrors(command: CommandType): void {
  command.configureOutput({
    outputError: (text, write) => {
      const message = oneLine(text.replace(/^error: /, ''))
        .replace(/ \(Did you mean/, ' (did you mean')
        .replace(/\.$/, '');
      write(`muster: ${message}; see \`${commandPath(command)} --help\`\n`);
    },
  });
}

/** The whole `muster` command tree. Failures throw (exitOverride) so main.ts maps them to exit codes. */
export function buildProgram(): CommandType {
  const program = new Command('muster')
    .description('zero-touch provisioning for fleets of machines')
    .version(packageJson.version, '--version', 'print the version')
    .addOption(new Option('--server <url>', `server to talk to (default: the stored login, else ${defaultServer})`).env('MUSTER_SERVER'))
    .addOption(new Option('--token <token>', 'API token or session token (default: the stored login)').env('MUSTER_TOKEN'))
    .option('--json', 'print machine-readable JSON instead of tables')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 other error, 2 usage or validation, 3 not found, 4 conflict, 5 authentication, 6 server unreachable.\nEvery command takes --help.',
    );
  for (const command of [
    serveCommand(),
    migrateCommand(),
    backupCommand(),
    masterKeyCommand(),
    loginCommand(),
    logoutCommand(),
    userCommand(),
    tokenCommand(),
    machineCommand(),
    fleetCommand(),
    caCommand(),
    enrollmentTokenCommand(),
    profileCommand(),
    explainCommand(),
    endpointCommand(),
    stageCommand(),
    groupCommand(),
    jobCommand(),
    artifactCommand(),
    piCommand(),
    ruleCommand(),
    bootCommand(),
    dnsmasqCommand(),
    simCommand(),
  ]) {
    program.addCommand(command);
  }
  eachCommand(program, (command) => {
    command.exitOverride().configureHelp({ showGlobalOptions: true });
    reportUsageErrors(command);
  });
  return program;
}
