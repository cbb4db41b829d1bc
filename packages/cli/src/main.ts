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

// A reader that stops early (muster machine ls | head) closes the pipe: it has read all it wanted, so muster ends
// quietly, as a command line tool should, instead of with an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
}

process.exitCode = await run(process.argv.slice(2));
