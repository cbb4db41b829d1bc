import { writeFileSync } from 'node:fs';
import type { Fleet, FleetCreate, FleetSlot, IpPool, SlotAllocation } from '@muster/contract';
import { Command, InvalidArgumentError } from 'commander';
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

  fleet
    .command('allocate')
    .description('pre-allocate N slots: hostnames continuing the fleet’s numbers, unique tunnel ports, one-time passwords')
    .argument('<name>', 'fleet name or id')
    .argument('<count>', 'how many slots, 1 to 10000', slotCount)
    .option('--otps-out <file>', 'write the new one-time passwords there, one per line, mode 0600 (the file must not exist)')
    .addHelpText(
      'after',
      '\nThe passwords are shown this once and stored only hashed. Without --otps-out they are printed in the table\n(--json prints the full records). A device claims its slot with POST /api/v1/claims/otp (docs/identity.md).\n\nExample:\n  muster fleet allocate pis 100 --otps-out pis-otps.txt',
    )
    .action(async (name: string, count: number, options: { otpsOut?: string }, command: Command) => {
      const session = await openSession(command);
      const allocation = await session.api.post<SlotAllocation>(`${fleetPath(name)}/slots`, { count });
      if (options.otpsOut) writeFileSync(options.otpsOut, allocation.slots.map((s) => `${s.otp}\n`).join(''), { mode: 0o600, flag: 'wx' });
      if (session.json) return printJson(allocation);
      const rows = allocation.slots.map((s) => [s.hostname, s.tunnel_port, options.otpsOut ? undefined : s.otp]);
      printText(
        options.otpsOut
          ? `${renderTable(['hostname', 'tunnel port'], rows)}\n\n${allocation.slots.length} one-time password(s) written to ${options.otpsOut} (mode 0600)`
          : renderTable(['hostname', 'tunnel port', 'one-time password'], rows),
      );
    });

  fleet
    .command('slots')
    .description('list a fleet’s slots: claimed by which hardware id, from where, or not yet (never their passwords)')
    .argument('<name>', 'fleet name or id')
    .addHelpText('after', '\nExample:\n  muster fleet slots pis')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const slots = await session.api.get<FleetSlot[]>(`${fleetPath(name)}/slots`);
      if (session.json) return printJson(slots);
      printText(
        renderTable(
          ['hostname', 'tunnel port', 'state', 'hwid', 'machine', 'claimed', 'from'],
          slots.map((s) => [s.hostname, s.tunnel_port, s.state, s.hwid, s.machine_id, formatTime(s.claimed_at), s.claimed_from]),
        ),
      );
    });

  fleet
    .command('ip-pool')
    .description('show the fleet’s IP pool (IPv4 or IPv6) and who holds which address; with CIDR, set it')
    .argument('<name>', 'fleet name or id')
    .argument('[cidr]', 'the range to set, e.g. 10.20.0.0/24 or fd00:20::/64')
    .addHelpText(
      'after',
      '\nMachines claimed into the fleet take the lowest free address; a retired one gives it back.\n\nExample:\n  muster fleet ip-pool pis 10.20.0.0/24',
    )
    .action(async (name: string, cidr: string | undefined, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const pool = cidr
        ? await session.api.put<IpPool>(`${fleetPath(name)}/ip-pool`, { cidr })
        : await session.api.get<IpPool>(`${fleetPath(name)}/ip-pool`);
      if (session.json) return printJson(pool);
      printText(
        `${renderFields([
          ['range', pool.cidr],
          ['allocated', `${pool.allocated} of ${Number.isSafeInteger(pool.size) ? pool.size : `about ${pool.size.toExponential(2)}`}`],
        ])}\n\n${renderTable(
          ['address', 'machine'],
          pool.allocations.map((a) => [a.address, a.machine_id]),
        )}`,
      );
    });

  return fleet;
}

function slotCount(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > 10_000) throw new InvalidArgumentError('expected a whole number from 1 to 10000');
  return count;
}
