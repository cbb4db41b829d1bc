import type { Job, JobState } from '@muster/contract';
import { Command } from 'commander';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { printJson, printText } from '../output.ts';
import { openSession } from '../session.ts';
import { jobFields, jobTable } from '../views/job.ts';

interface LsOptions extends ListOptions {
  state?: JobState;
  type?: string;
  machine?: string;
}

export function jobCommand(): Command {
  const job = new Command('job').description('follow asynchronous work: image builds, power operations, bulk changes');

  addListOptions(
    job
      .command('ls')
      .description('list jobs')
      .option('--state <state>', 'only jobs in this state: queued, running, succeeded, failed or cancelled')
      .option('--type <type>', 'only jobs of this type, e.g. build')
      .option('--machine <id>', 'only jobs for this machine (id or identifier)'),
  )
    .addHelpText('after', '\nExample:\n  muster job ls --state failed --type build')
    .action(async (options: LsOptions, command: Command) => {
      const session = await openSession(command);
      const query = { state: options.state, type: options.type, machine: options.machine };
      printListing(session, await fetchList<Job>(session, '/jobs', query, options), (items) => jobTable(items));
    });

  job
    .command('show')
    .description('show one job')
    .argument('<id>', 'job id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const found = await session.api.get<Job>(`/jobs/${segment(id)}`);
      if (session.json) return printJson(found);
      printText(jobFields(found));
    });

  job
    .command('log')
    .description("print a job's log")
    .argument('<id>', 'job id')
    .addHelpText('after', '\nExample:\n  muster job log j_01J0ABC | less')
    .action(async (id: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const log = await session.api.text(`/jobs/${segment(id)}/log`);
      if (session.json) return printJson({ id, log });
      process.stdout.write(log);
    });

  return job;
}
