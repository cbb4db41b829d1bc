import type { Fleet, FleetCreate } from '@muster/contract';
import { Command } from 'commander';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { openSession, type Session } from '../session.ts';

const fleetPath = (name: string) => `/fleets/${segment(name)}`;

function fleetTable(fleets: readonly Fleet[]): string {
  return renderTable(
    ['ID', 'NAME', 'MACHINES', 'NEXT', 'DESCRIPTION'],
    fleets.map((f) => [f.id, f.name, f.machine_count, `${f.name}-${f.next_seq}`, f.description]),
  );
}

function fleetFields(f: Fleet): string {
  return renderFields([
    ['id', f.id],
    ['name', f.name],
    ['description', f.description],
    ['machines', f.machine_count],
    ['next number', `${f.next_seq} (${f.name}-${f.next_seq})`],
    ['created', formatTime(f.created_at)],
    ['updated', formatTime(f.updated_at)],
  ]);
}

function printFleet(session: Session, f: Fleet): void {
  if (session.json) printJson(f);
  else printText(fleetFields(f));
}

export function fleetCommand(): Command {
  const fleet = new Command('fleet').description('manage fleets: named sets of machines numbered NAME-1, NAME-2, …');

  addListOptions(fleet.command('ls').description('list fleets')).action(async (options: ListOptions, command: Command) => {
    const session = await openSession(command);
    printListing(session, await fetchList<Fleet>(session, '/fleets', {}, options), fleetTable);
  });

  fleet
    .command('create')
    .description('create a fleet')
    .argument('<name>', 'short name; machines become NAME-1, NAME-2, …')
    .option('--description <text>', 'free text')
    .addHelpText('after', '\nExample:\n  muster fleet create pis --description "Raspberry Pis in hall B"')
    .action(async (name: string, options: { description?: string }, command: Command) => {
      const session = await openSession(command);
      const body: FleetCreate = { name, description: options.description };
      printFleet(session, await session.api.post<Fleet>('/fleets', body));
    });

  fleet
    .command('show')
    .description('show one fleet')
    .argument('<name>', 'fleet name or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printFleet(session, await session.api.get<Fleet>(fleetPath(name)));
    });

  fleet
    .command('set')
    .description("change a fleet's description")
    .argument('<name>', 'fleet name or id')
    .requiredOption('--description <text>', 'new description')
    .addHelpText('after', '\nExample:\n  muster fleet set pis --description "Pis, hall B and C"')
    .action(async (name: string, options: { description: string }, command: Command) => {
      const session = await openSession(command);
      printFleet(session, await session.api.put<Fleet>(fleetPath(name), { description: options.description }));
    });

  fleet
    .command('delete')
    .description('delete a fleet')
    .argument('<name>', 'fleet name or id')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.delete<unknown>(fleetPath(name));
      if (session.json) return printJson(result ?? { deleted: name });
      printText(`deleted fleet ${name}`);
    });

  return fleet;
}
