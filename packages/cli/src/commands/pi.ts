import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { PiMachine, PiProvisionResult, PiSerialFiles, PiTree, PiTreeFile } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { Command } from 'commander';
import { parsePiSerial } from '../arguments.ts';
import { type ArtifactClient, openArtifactClient, uploadArtifact } from '../artifact-transfer.ts';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatAgo, formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { startProgress } from '../progress.ts';
import { openSession } from '../session.ts';

const templateSuffix = '.liquid';

function treeTable(trees: readonly PiTree[]): string {
  return renderTable(
    ['NAME', 'FILES', 'TEMPLATES', 'SERIAL PATTERN', 'MACHINES', 'UPDATED'],
    trees.map((t) => [
      t.name,
      t.files.length,
      t.files.filter((f) => f.template).length,
      t.serial_pattern,
      t.machine_count,
      formatTime(t.updated_at),
    ]),
  );
}

function filesTable(files: readonly PiTreeFile[]): string {
  return renderTable(
    ['PATH', 'SIZE', 'SHA256', 'TEMPLATE'],
    files.map((f) => [f.path, f.size, f.sha256.slice(0, 16), f.template ? 'yes' : '']),
  );
}

function piTable(pis: readonly PiMachine[]): string {
  return renderTable(
    ['SERIAL', 'MACHINE', 'HOSTNAME', 'STATE', 'TREE', 'LAST SEEN'],
    pis.map((p) => [p.serial, p.machine_id, p.hostname, p.state, p.tree, formatAgo(p.last_seen_at)]),
  );
}

/** Every regular file below `dir`, as '/'-separated paths relative to it; symlinks are followed only to files. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new MusterError('bad_request', `cannot read directory ${dir}: ${error.code === 'ENOENT' ? 'no such directory' : error.message}`);
  });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** Uploads a directory's files as artifacts (only those the server lacks) and returns the tree's manifest. */
async function uploadTree(client: ArtifactClient, dir: string): Promise<PiTreeFile[]> {
  const paths = await listTree(dir);
  if (paths.length === 0) throw new MusterError('bad_request', `directory ${dir} holds no files`);
  const files: PiTreeFile[] = [];
  let uploaded = 0;
  const sizes = await Promise.all(paths.map(async (path) => (await stat(join(dir, path))).size));
  const progress = startProgress(
    `uploading ${dir}`,
    sizes.reduce((sum, size) => sum + size, 0),
  );
  let before = 0;
  for (const [index, path] of paths.entries()) {
    const { artifact, uploaded: sent } = await uploadArtifact(client, join(dir, path), {
      onProgress: (bytes) => progress.update(before + bytes),
    });
    before += sizes[index];
    progress.update(before);
    if (sent) uploaded++;
    const template = path.endsWith(templateSuffix);
    files.push({ path: template ? path.slice(0, -templateSuffix.length) : path, sha256: artifact.sha256, size: artifact.size, template });
  }
  progress.finish();
  if (!client.session.json) printNote(`${paths.length} files, ${uploaded} uploaded, ${paths.length - uploaded} already on the server`);
  return files;
}

export function piCommand(): Command {
  const pi = new Command('pi').description('Raspberry Pi netboot: boot trees served per serial over TFTP');
  const tree = pi.command('tree').description('Pi boot trees: a directory served as <serial>/… to every Pi that uses it');

  tree
    .command('add')
    .description('make a directory a Pi boot tree (files ending in .liquid are rendered per machine and served without the suffix)')
    .argument('<name>', 'tree name')
    .argument('<dir>', 'directory with start4.elf, config.txt, kernel8.img, overlays/, cmdline.txt.liquid, …')
    .option('--serial-pattern <glob>', 'send unseen serials that match here (a rule of the same name), e.g. "*" or "dca6*"')
    .addHelpText(
      'after',
      '\nTemplates see: serial, tree, machine.id, machine.hostname, machine.state, machine.labels, server.url.\n\nExample:\n  muster pi tree add lab ./boot --serial-pattern "*"',
    )
    .action(async (name: string, dir: string, options: { serialPattern?: string }, command: Command) => {
      const client = await openArtifactClient(command);
      const session = client.session;
      const files = await uploadTree(client, dir);
      const saved = await session.api.put<PiTree>(`/pi/trees/${segment(name)}`, { files, serial_pattern: options.serialPattern });
      if (session.json) return printJson(saved);
      printText(treeTable([saved]));
    });

  tree
    .command('ls')
    .description('list Pi boot trees')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const { items } = await session.api.get<{ items: PiTree[] }>('/pi/trees');
      if (session.json) printJson(items);
      else printText(treeTable(items));
    });

  tree
    .command('show')
    .description("show a tree's files")
    .argument('<name>', 'tree name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const found = await session.api.get<PiTree>(`/pi/trees/${segment(name)}`);
      if (session.json) return printJson(found);
      printText(
        `${renderFields([
          ['name', found.name],
          ['serial pattern', found.serial_pattern],
          ['machines', found.machine_count],
        ])}\n\n${filesTable(found.files)}`,
      );
    });

  tree
    .command('rm')
    .description('delete a tree that no machine uses')
    .argument('<name>', 'tree name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/pi/trees/${segment(name)}`);
      if (session.json) printJson({ deleted: name });
      else printText(`deleted Pi tree ${name}`);
    });

  pi.command('provision')
    .description('provision a serial by hand: create its machine if unseen and set its tree')
    .argument('<serial>', 'Pi serial as in its TFTP path (94a418cd) or in /proc/cpuinfo (1000000094a418cd)', parsePiSerial)
    .option('--tree <name>', 'boot tree (default: the one its rule names)')
    .addHelpText(
      'after',
      '\nExample:\n  muster pi provision 12345678 --tree lab\n  muster pi provision 10000000dca63201   # stored as dca63201',
    )
    .action(async (serial: string, options: { tree?: string }, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.post<PiProvisionResult>('/pi/provision', { serial, tree: options.tree });
      if (session.json) return printJson(result);
      printText(
        `${result.created ? 'provisioned' : 'already known:'} ${result.machine.serial} as ${result.machine.machine_id}, tree ${result.tree}`,
      );
    });

  addListOptions(
    pi
      .command('ls')
      .description('list Pis (machines with a boot tree) by serial')
      .option('--tree <name>', 'only Pis on this tree')
      .option('--count', 'print only how many there are'),
  ).action(async (options: ListOptions & { tree?: string; count?: boolean }, command: Command) => {
    const session = await openSession(command);
    if (options.count) {
      const page = await session.api.page<PiMachine>('/pi/machines', { tree: options.tree, limit: 1, total: true });
      return session.json ? printJson({ count: page.total }) : printText(String(page.total));
    }
    printListing(session, await fetchList<PiMachine>(session, '/pi/machines', { tree: options.tree }, options), piTable);
  });

  pi.command('show')
    .description('what a serial will get: its tree and files, templates rendered for it (creates nothing)')
    .argument('<serial>', 'Pi serial, 8 or 16 hex digits', parsePiSerial)
    .option('--file <path>', 'print one file as the serial gets it')
    .action(async (serial: string, options: { file?: string }, command: Command) => {
      const session = await openSession(command);
      if (options.file)
        return printText(
          (await session.api.text(`/pi/serials/${segment(serial)}/files/${options.file.split('/').map(segment).join('/')}`)).replace(
            /\n$/,
            '',
          ),
        );
      const plan = await session.api.get<PiSerialFiles>(`/pi/serials/${segment(serial)}/files`);
      if (session.json) return printJson(plan);
      const why = plan.machine_id ? `machine ${plan.machine_id}` : `unseen; rule ${plan.rule}`;
      printText(
        `${renderFields([
          ['serial', plan.serial],
          ['tree', `${plan.tree} (${why})`],
        ])}\n\n${filesTable(plan.files)}`,
      );
    });

  return pi;
}
