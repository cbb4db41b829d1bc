import { Command, CommanderError, Option } from 'commander';
import { dnsmasqCommand } from '../../packages/cli/src/commands/dnsmasq.ts';
import { describeFailure, usageExit } from '../../packages/cli/src/failure.ts';

/** `muster` with the global options and the dnsmasq commands only, failing as main.ts fails: one line, an exit code. */
const program = new Command('muster')
  .addOption(new Option('--server <url>').env('MUSTER_SERVER'))
  .addOption(new Option('--token <token>').env('MUSTER_TOKEN'))
  .option('--json')
  .addCommand(dnsmasqCommand());
const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)];
for (const command of all(program)) {
  command.exitOverride().configureOutput({ outputError: (text, write) => write(`muster: ${text.replace(/^error: /, '')}`) });
}

try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch (error) {
  if (error instanceof CommanderError) process.exitCode = error.exitCode === 0 ? 0 : usageExit;
  else {
    const failure = describeFailure(error);
    process.stderr.write(`muster: ${failure.message}\n`);
    process.exitCode = failure.exit;
  }
}
