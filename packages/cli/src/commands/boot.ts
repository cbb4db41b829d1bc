import { readFile } from 'node:fs/promises';
import { type BootScript, type BootSession, type BootSessionDetail, bootScriptNames } from '@muster/contract';
import { Argument, Command } from 'commander';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { readStdin } from '../prompt.ts';
import { openSession } from '../session.ts';

function sessionTable(sessions: readonly BootSession[]): string {
  return renderTable(
    ['ID', 'STARTED', 'LAST', 'DOOR', 'CLIENT', 'REQUESTS', 'BYTES', 'ERRORS'],
    sessions.map((s) => [s.id, formatTime(s.started_at), formatTime(s.last_at), s.door, s.client, s.requests, s.bytes, s.errors]),
  );
}

function timelineText(session: BootSessionDetail): string {
  const head = renderFields([
    ['session', session.id],
    ['machine', session.machine_id],
    ['client', session.client],
    ['started', formatTime(session.started_at)],
    ['requests', `${session.requests} (${session.errors} failed), ${session.bytes} bytes`],
  ]);
  const rows = renderTable(
    ['AT', 'DOOR', 'PATH', 'STATUS', 'BYTES', 'MS', 'ERROR', 'TIMES'],
    session.timeline.map((r) => [formatTime(r.at), r.door, r.path, r.status, r.bytes, r.duration_ms, r.error, r.count]),
  );
  return `${head}\n\n${rows}`;
}

const scriptName = () => new Argument('<name>', 'script name').choices([...bootScriptNames]);

function printScript(json: boolean, script: BootScript): void {
  if (json) printJson(script);
  else printText(script.body.replace(/\n$/, ''));
}

export function bootCommand(): Command {
  const boot = new Command('boot').description('boot timelines and the iPXE scripts machines get');

  addListOptions(
    boot
      .command('sessions')
      .description("a machine's boot sessions, newest first")
      .argument('<machine>', 'machine id or identifier (serial:…, mac:…)'),
  ).action(async (machine: string, options: ListOptions, command: Command) => {
    const session = await openSession(command);
    printListing(session, await fetchList<BootSession>(session, `/machines/${segment(machine)}/boot-sessions`, {}, options), sessionTable);
  });

  boot
    .command('session')
    .description('one boot session: every request with its status, bytes and time')
    .argument('<id>', 'boot session id (b_…)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const detail = await session.api.get<BootSessionDetail>(`/boot-sessions/${segment(id)}`);
      if (session.json) printJson(detail);
      else printText(timelineText(detail));
    });

  const script = boot.command('script').description('iPXE script templates: registration (unknown and enrolled machines) and ready');
  script
    .command('show')
    .description('print a script template (the built-in one until set)')
    .addArgument(scriptName())
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printScript(session.json, await session.api.get<BootScript>(`/boot/scripts/${name}`));
    });
  script
    .command('set')
    .description('set a script template from a file (Liquid; starts with #!ipxe)')
    .addArgument(scriptName())
    .argument('<file>', 'template file, or - for stdin')
    .addHelpText(
      'after',
      '\nVariables: machine.id, machine.hostname, machine.state, machine.mac, machine.uuid, machine.serial,\nmachine.labels, server.url, artifacts["NAME"] (a signed URL of a published artifact).\n\nExample:\n  muster boot script set ready install.ipxe.liquid',
    )
    .action(async (name: string, file: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const body = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      printScript(session.json, await session.api.put<BootScript>(`/boot/scripts/${name}`, { body }));
    });
  script
    .command('reset')
    .description('go back to the built-in script')
    .addArgument(scriptName())
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      printScript(session.json, await session.api.delete<BootScript>(`/boot/scripts/${name}`));
    });

  return boot;
}
