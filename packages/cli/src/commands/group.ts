import type { Group, GroupCreate, Machine } from '@muster/contract';
import { Command } from 'commander';
import { collect } from '../arguments.ts';
import { segment } from '../client.ts';
import { describeFailure } from '../failure.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { openSession, type Session } from '../session.ts';
import { machineTable } from '../views/machine.ts';

const groupPath = (name: string) => `/groups/${segment(name)}`;

function groupTable(groups: readonly Group[]): string {
  return renderTable(
    ['ID', 'NAME', 'MACHINES', 'TAGS', 'DESCRIPTION'],
    groups.map((g) => [g.id, g.name, g.machine_count, g.tags.join(','), g.description]),
  );
}

function groupFields(g: Group): string {
  return renderFields([
    ['id', g.id],
    ['name', g.name],
    ['description', g.description],
    ['tags', g.tags.join(', ')],
    ['machines', g.machine_count],
    ['created', formatTime(g.created_at)],
    ['updated', formatTime(g.updated_at)],
  ]);
}

function printGroup(session: Session, g: Group): void {
  if (session.json) printJson(g);
  else printText(groupFields(g));
}

/**
 * Adds or removes each machine in turn. One missing machine does not stop the others; every failure
 * gets its line on stderr and the exit code is that of the first failure.
 */
async function changeMembers(session: Session, group: string, machines: string[], method: 'put' | 'delete'): Promise<void> {
  const done: string[] = [];
  const failed: { machine: string; message: string; exit: number }[] = [];
  for (const machine of machines) {
    const path = `${groupPath(group)}/machines/${segment(machine)}`;
    try {
      await (method === 'put' ? session.api.put(path) : session.api.delete(path));
      done.push(machine);
    } catch (error) {
      failed.push({ machine, ...describeFailure(error) });
    }
  }
  const verb = method === 'put' ? 'added' : 'removed';
  if (session.json) printJson({ group, [verb]: done, failed: failed.map(({ machine, message }) => ({ machine, message })) });
  else for (const machine of done) printText(`${verb} ${machine} ${method === 'put' ? 'to' : 'from'} group ${group}`);
  for (const f of failed) process.stderr.write(`muster: ${f.machine}: ${f.message}\n`);
  if (failed.length > 0) process.exitCode = failed[0].exit;
}

export function groupCommand(): Command {
  const group = new Command('group').description('manage groups: named, tagged sets of machines across fleets');

  addListOptions(group.command('ls').description('list groups')).action(async (options: ListOptions, command: Command) => {
    const session = await openSession(command);
    printListing(session, await fetchList<Group>(session, '/groups', {}, options), groupTable);
  });

  group
    .command('create')
    .description('create a group')
    .argument('<name>', 'group name')
    .option('--description <text>', 'free text')
    .option('--tag <tag...>', 'a tag; repeat for more', collect(String))
    .addHelpText('after', '\nExample:\n  muster group create canary --description "first to get updates" --tag rollout')
    .action(async (name: string, options: { description?: string; tag?: string[] }, command: Command) => {
      const session = await openSession(command);
      const body: GroupCreate = { name, description: options.description, tags: options.tag };
      printGroup(session, await session.api.post<Group>('/groups', body));
    });

  group
    .command('show')
    .description('show one group')
    .argument('<name>', 'group name or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printGroup(session, await session.api.get<Group>(groupPath(name)));
    });

  group
    .command('delete')
    .description('delete a group (its machines stay)')
    .argument('<name>', 'group name or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.delete<unknown>(groupPath(name));
      if (session.json) return printJson(result ?? { deleted: name });
      printText(`deleted group ${name}`);
    });

  group
    .command('add')
    .description('add machines to a group')
    .argument('<group>', 'group name or id')
    .argument('<machine...>', 'machine ids or identifiers such as serial:ABC123')
    .addHelpText('after', '\nExample:\n  muster group add canary m_01J0ABC serial:AZJN-0042')
    .action(async (name: string, machines: string[], _options: unknown, command: Command) => {
      await changeMembers(await openSession(command), name, machines, 'put');
    });

  group
    .command('remove')
    .description('remove machines from a group')
    .argument('<group>', 'group name or id')
    .argument('<machine...>', 'machine ids or identifiers')
    .addHelpText('after', '\nExample:\n  muster group remove canary serial:AZJN-0042')
    .action(async (name: string, machines: string[], _options: unknown, command: Command) => {
      await changeMembers(await openSession(command), name, machines, 'delete');
    });

  addListOptions(group.command('machines').description("list a group's machines").argument('<group>', 'group name or id')).action(
    async (name: string, options: ListOptions, command: Command) => {
      const session = await openSession(command);
      printListing(session, await fetchList<Machine>(session, `${groupPath(name)}/machines`, {}, options), (items) => machineTable(items));
    },
  );

  return group;
}
