import { CommanderError } from 'commander';
import { describeFailure, usageExit } from './failure.ts';
import { buildProgram } from './program.ts';

/** Runs one command line; returns the exit code. */
async function run(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed the usage error, or the help (asked for: exit 0; for a group given no command: 2).
      return error.exitCode === 0 ? 0 : usageExit;
    }
    const failure = describeFailure(error);
    process.stderr.write(`muster: ${failure.message}\n`);
    return failure.exit;
  }
}

process.exitCode = await run(process.argv.slice(2));
