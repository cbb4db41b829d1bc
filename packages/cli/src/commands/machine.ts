import { readFile } from 'node:fs/promises';
import type { Event, Identifier, Job, Machine, MachineCreate, MachineUpdate, TokenClaimAnswer } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { type MachineState, machineStates } from '@muster/contract/lifecycle.ts';
import { Argument, Command, Option } from 'commander';
import { collect, parseIdentifier, parseLabel, parseLabelFilter, parseLabelKey } from '../arguments.ts';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { printJson, printNote, printText } from '../output.ts';
import { readStdin } from '../prompt.ts';
import { openSession, type Session } from '../session.ts';
import { eventTable } from '../views/event.ts';
import { jobFields } from '../views/job.ts';
import { machineFields, machineTable } from '../views/machine.ts';
import { followEvents } from './machine-events.ts';

const machinePath = (ref: string) => `/machines/${segment(ref)}`;
const refArgument = () => new Argument('<id>', 'machine id (m_…) or identifier such as serial:ABC123 or mac:00:11:22:33:44:55');

function printMachine(session: Session, machine: Machine): void {
  if (session.json) printJson(machine);
  else printText(machineFields(machine));
}

interface LsOptions extends ListOptions {
  state?: MachineState;
  fleet?: string;
  group?: string;
  label?: string[];
  q?: string;
  sort?: string;
  order?: string;
  count?: boolean;
}

interface AddOptions {
  id: Identifier[];
  hostname?: string;
  description?: string;
  fleet?: string;
  label?: [string, string][];
}

interface SetOptions {
  hostname?: string;
  description?: string;
  fleet?: string | false;
  label?: [string, string][];
  unlabel?: string[];
  configFile?: string;
}

function lsCommand(): Command {
  const ls = new Command('ls')
    .description('list machines')
    .addOption(new Option('--state <state>', 'only machines in this state').choices(machineStates))
    .option('--fleet <name>', 'only machines in this fleet')
    .option('--group <name>', 'only machines in this group')
    .option(
      '--label <key=value...>',
      'only machines with this label (key alone: has the label); repeat to require several',
      collect(parseLabelFilter),
    )
    .option('-q, --query <text>', 'free text: id, hostname, description, identifiers')
    .option('--sort <field>', 'sort by a field: id, hostname, state, created_at, updated_at or last_seen_at')
    .addOption(new Option('--order <order>', 'sort order').choices(['asc', 'desc']))
    .option('--count', 'print only how many machines match');
  return addListOptions(ls)
    .addHelpText(
      'after',
      '\nExamples:\n  muster machine ls --state enrolled --fleet pis --label rack=r12\n  muster machine ls --count --state failed',
    )
    .action(async (options: LsOptions & { query?: string }, command: Command) => {
      const session = await openSession(command);
      const { state, fleet, group, label, query: q, sort, order } = options;
      const query = { state, fleet, group, label, q, sort, order };
      if (options.count) {
        const page = await session.api.page<Machine>('/machines', { ...query, total: true, limit: 1 });
        if (page.total === undefined) throw new MusterError('internal', 'the server did not return a total for this list');
        return printText(String(page.total));
      }
      printListing(session, await fetchList<Machine>(session, '/machines', query, options), (items) => machineTable(items));
    });
}

function addCommand(): Command {
  return new Command('add')
    .description('register a machine by hand, before it ever boots')
    .requiredOption(
      '--id <kind:value...>',
      'an identifier, e.g. serial:AZJN-0042 or mac:00:11:22:33:44:55; repeat for more',
      collect(parseIdentifier),
    )
    .option('--hostname <name>', 'hostname (default: from the fleet)')
    .option('--description <text>', 'free text')
    .option('--fleet <name>', 'fleet to join')
    .option('--label <key=value...>', 'label to set; repeat for more', collect(parseLabel))
    .addHelpText('after', '\nExample:\n  muster machine add --id serial:AZJN-0042 --id mac:00:11:22:33:44:55 --fleet pis --label rack=r12')
    .action(async (options: AddOptions, command: Command) => {
      const session = await openSession(command);
      const body: MachineCreate = {
        identifiers: options.id,
        hostname: options.hostname,
        description: options.description,
        fleet: options.fleet,
        labels: options.label ? Object.fromEntries(options.label) : undefined,
      };
      printMachine(session, await session.api.post<Machine>('/machines', body));
    });
}

async function readConfigFile(path: string): Promise<string> {
  return path === '-' ? readStdin() : readFile(path, 'utf8');
}

/** The labels after --label and --unlabel: the API replaces the whole map, so merge into the current one. */
export function mergeLabels(current: Record<string, string>, set: [string, string][] = [], unset: string[] = []): Record<string, string> {
  const labels = { ...current };
  for (const key of unset) delete labels[key];
  for (const [key, value] of set) labels[key] = value;
  return labels;
}

function setCommand(): Command {
  return new Command('set')
    .description('change a machine: hostname, description, fleet, labels, NixOS config')
    .addArgument(refArgument())
    .option('--hostname <name>', 'new hostname')
    .option('--description <text>', 'new description')
    .option('--fleet <name>', 'move to this fleet')
    .option('--no-fleet', 'take out of its fleet')
    .option('--label <key=value...>', 'set a label; repeat for more', collect(parseLabel))
    .option('--unlabel <key...>', 'remove a label; repeat for more', collect(parseLabelKey))
    .option('--config-file <file>', 'set nixos_config from a file (- for stdin)')
    .addHelpText('after', '\nExample:\n  muster machine set serial:AZJN-0042 --hostname pi-42 --label rack=r12 --unlabel spare')
    .action(async (ref: string, options: SetOptions, command: Command) => {
      const patch: MachineUpdate = {};
      if (options.hostname !== undefined) patch.hostname = options.hostname;
      if (options.description !== undefined) patch.description = options.description;
      if (options.fleet !== undefined) patch.fleet = options.fleet === false ? null : options.fleet;
      if (options.configFile !== undefined) patch.nixos_config = await readConfigFile(options.configFile);
      const relabel = Boolean(options.label || options.unlabel);
      if (Object.keys(patch).length === 0 && !relabel) {
        throw new MusterError(
          'bad_request',
          'nothing to change: give --hostname, --description, --fleet, --no-fleet, --label, --unlabel or --config-file',
        );
      }
      const session = await openSession(command);
      if (relabel) {
        const current = await session.api.get<Machine>(machinePath(ref));
        patch.labels = mergeLabels(current.labels, options.label, options.unlabel);
      }
      printMachine(session, await session.api.put<Machine>(machinePath(ref), patch));
    });
}

function transitionCommand(): Command {
  return new Command('transition')
    .description('move a machine to another lifecycle state')
    .addArgument(refArgument())
    .addArgument(new Argument('<state>', 'the state to move to').choices(machineStates))
    .option('--reason <text>', 'why, for the event log')
    .addHelpText('after', '\nExample:\n  muster machine transition m_01J0ABC configured --reason "inventory checked"')
    .action(async (ref: string, to: MachineState, options: { reason?: string }, command: Command) => {
      const session = await openSession(command);
      printMachine(session, await session.api.post<Machine>(`${machinePath(ref)}/transition`, { to, reason: options.reason }));
    });
}

function eventsCommand(): Command {
  const events = new Command('events')
    .description("show a machine's event history; --follow keeps printing new events as they happen")
    .addArgument(refArgument())
    .option('-f, --follow', 'keep printing events as they arrive, until Ctrl-C');
  return addListOptions(events)
    .addHelpText('after', '\nExample:\n  muster machine events serial:AZJN-0042 --follow')
    .action(async (ref: string, options: ListOptions & { follow?: boolean }, command: Command) => {
      const session = await openSession(command);
      const listing = await fetchList<Event>(session, `${machinePath(ref)}/events`, {}, options);
      const history = [...listing.items].sort((a, b) => a.id - b.id);
      if (!options.follow) return printListing(session, { ...listing, items: history }, eventTable);
      const machine = await session.api.get<Machine>(machinePath(ref));
      await followEvents(session, machine.id, history);
    });
}

function buildCommand(): Command {
  return new Command('build')
    .description("queue a build of a machine's image; prints the job")
    .addArgument(refArgument())
    .addHelpText('after', '\nExample:\n  muster machine build serial:AZJN-0042')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const job = await session.api.post<Job>(`${machinePath(ref)}/build`);
      if (session.json) return printJson(job);
      printText(jobFields(job));
      printNote(`Follow it with: muster job show ${job.id}   (log: muster job log ${job.id})`);
    });
}

export function machineCommand(): Command {
  const machine = new Command('machine').description('list, register and change machines');
  machine.addCommand(lsCommand());
  machine
    .command('show')
    .description('show one machine')
    .addArgument(refArgument())
    .addHelpText('after', '\nExample:\n  muster machine show serial:AZJN-0042')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printMachine(session, await session.api.get<Machine>(machinePath(ref)));
    });
  machine.addCommand(addCommand());
  machine.addCommand(setCommand());
  machine.addCommand(transitionCommand());
  machine.addCommand(eventsCommand());
  machine.addCommand(buildCommand());
  machine.addCommand(decisionCommand('approve'));
  machine.addCommand(decisionCommand('reject'));
  return machine;
}

/** `machine approve|reject`: decides a claim made with an enrollment token that waits for an operator. */
function decisionCommand(decision: 'approve' | 'reject'): Command {
  const command = new Command(decision)
    .description(
      decision === 'approve'
        ? 'approve a pending claim (enrollment token): the machine is enrolled and gets its certificate'
        : 'reject a pending claim (enrollment token): the machine is retired and the device is refused',
    )
    .addArgument(refArgument())
    .addHelpText('after', `\nExample:\n  muster machine ${decision} hwid:1423-0042${decision === 'reject' ? ' --reason "not ours"' : ''}`);
  if (decision === 'reject') command.option('--reason <text>', 'why, for the audit log');
  return command.action(async (ref: string, options: { reason?: string }, sub: Command) => {
    const session = await openSession(sub);
    if (decision === 'approve') {
      const answer = await session.api.post<TokenClaimAnswer>(`${machinePath(ref)}/approve`);
      if (session.json) return printJson(answer);
      return printText(
        `approved ${answer.machine_id}${answer.hostname ? ` (${answer.hostname})` : ''}${answer.certificate ? '; certificate issued' : ''}`,
      );
    }
    await session.api.post<unknown>(`${machinePath(ref)}/reject`, options.reason ? { reason: options.reason } : {});
    if (session.json) return printJson({ rejected: ref });
    printText(`rejected ${ref}`);
  });
}
