import { Command, CommanderError } from 'commander';
import { simCommand } from '../../packages/cli/src/commands/sim.ts';
import { describeFailure, usageExit } from '../../packages/cli/src/failure.ts';

/** `muster` with only `sim` in it, built the way program.ts and main.ts build and run the whole tree. */
async function run(argv: string[]): Promise<number> {
  const program = new Command('muster').option('--json', 'print machine-readable JSON instead of tables').addCommand(simCommand());
  const all = [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)];
  for (const command of all) {
    command.exitOverride().configureOutput({ outputError: (text, write) => write(`muster: ${text.replace(/^error: /, '').trim()}\n`) });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : usageExit;
    const failure = describeFailure(error);
    process.stderr.write(`muster: ${failure.message}\n`);
    return failure.exit;
  }
}

process.exitCode = await run(process.argv.slice(2));
