import { stat } from 'node:fs/promises';
import type { Artifact, ArtifactNameEntry } from '@muster/contract';
import { Command } from 'commander';
import { type ArtifactClient, downloadArtifact, openArtifactClient, uploadArtifact } from '../artifact-transfer.ts';
import { segment } from '../client.ts';
import { addListOptions, fetchList, type ListOptions, printListing } from '../list.ts';
import { formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { formatSize, startProgress } from '../progress.ts';
import { openSession } from '../session.ts';

export { type ArtifactClient, openArtifactClient, type UploadResult, uploadArtifact } from '../artifact-transfer.ts';
export { formatSize } from '../progress.ts';

function artifactTable(artifacts: readonly Artifact[]): string {
  return renderTable(
    ['SHA256', 'SIZE', 'FILE', 'PUBLISHED AS', 'CREATED'],
    artifacts.map((a) => [a.sha256, formatSize(a.size), a.name, a.names.join(','), formatTime(a.created_at)]),
  );
}

function nameTable(names: readonly ArtifactNameEntry[]): string {
  return renderTable(
    ['NAME', 'SHA256', 'SIZE', 'UPDATED'],
    names.map((n) => [n.name, n.sha256, formatSize(n.size), formatTime(n.updated_at)]),
  );
}

function artifactFields(a: Artifact): string {
  return renderFields([
    ['sha256', a.sha256],
    ['size', `${a.size} bytes (${formatSize(a.size)})`],
    ['file', a.name],
    ['published as', a.names],
    ['created', `${formatTime(a.created_at)} by ${a.created_by}`],
  ]);
}

const isSha256 = (ref: string) => /^[0-9a-fA-F]{64}$/.test(ref);

/** A 64-hex-digit argument is a sha256; anything else is a published name. */
async function resolveArtifact(client: ArtifactClient, ref: string): Promise<Artifact> {
  const sha256 = isSha256(ref) ? ref.toLowerCase() : (await client.api.get<ArtifactNameEntry>(`/artifact-names/${segment(ref)}`)).sha256;
  return client.api.get<Artifact>(`/artifacts/${sha256}`);
}

export function artifactCommand(): Command {
  const artifact = new Command('artifact').description(
    'manage artifacts: files served to machines (kernels, initrds, images, iPXE binaries), stored by sha256',
  );

  artifact
    .command('add')
    .description('upload a file (unless the server has its content already) and print its sha256 and size')
    .argument('<file>', 'the file to upload')
    .option('--name <name>', 'also publish it under this name, e.g. ipxe.efi or registration/bzImage')
    .option('--always', 'upload even when the server lists the content (a replica with its own artifact directory)')
    .addHelpText('after', '\nExamples:\n  muster artifact add bzImage\n  muster artifact add undionly.kpxe --name undionly.kpxe')
    .action(async (file: string, options: { name?: string; always?: boolean }, command: Command) => {
      const client = await openArtifactClient(command);
      const progress = startProgress(`uploading ${file}`, (await stat(file)).size);
      const { artifact: added, uploaded } = await uploadArtifact(client, file, {
        publish: options.name,
        always: options.always,
        onProgress: (sent) => progress.update(sent),
      });
      if (uploaded) progress.finish();
      if (client.session.json) return printJson({ ...added, uploaded });
      printText(artifactFields(added));
      printNote(uploaded ? `uploaded ${file}` : `the server has this content already (${added.sha256}): nothing was uploaded`);
    });

  addListOptions(artifact.command('ls').description('list artifacts, newest first'))
    .option('--names', 'list the published names instead')
    .action(async (options: ListOptions & { names?: boolean }, command: Command) => {
      const session = await openSession(command);
      if (options.names) printListing(session, await fetchList<ArtifactNameEntry>(session, '/artifact-names', {}, options), nameTable);
      else printListing(session, await fetchList<Artifact>(session, '/artifacts', {}, options), artifactTable);
    });

  artifact
    .command('show')
    .description('show an artifact and the names published for it')
    .argument('<ref>', 'sha256 (64 hex digits) or published name')
    .action(async (ref: string, _options: unknown, command: Command) => {
      const client = await openArtifactClient(command);
      const found = await resolveArtifact(client, ref);
      if (client.session.json) printJson(found);
      else printText(artifactFields(found));
    });

  artifact
    .command('get')
    .description("download an artifact's content, checking its sha256")
    .argument('<ref>', 'sha256 (64 hex digits) or published name')
    .requiredOption('-o, --output <file>', 'where to write it; - for stdout')
    .addHelpText('after', '\nExample:\n  muster artifact get ipxe.efi -o /tmp/ipxe.efi')
    .action(async (ref: string, options: { output: string }, command: Command) => {
      const client = await openArtifactClient(command);
      const found = await resolveArtifact(client, ref);
      const progress = startProgress(`downloading ${found.name || found.sha256}`, found.size);
      await downloadArtifact(client, found, options.output, (received) => progress.update(received));
      progress.finish();
      if (options.output !== '-') printNote(`wrote ${found.size} bytes to ${options.output} (sha256 ${found.sha256})`);
    });

  artifact
    .command('publish')
    .description('publish an artifact under a name, or point the name at another artifact')
    .argument('<name>', 'relative path such as ipxe.efi or registration/bzImage')
    .argument('<sha256>', 'the artifact')
    .action(async (name: string, sha256: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const entry = await session.api.put<ArtifactNameEntry>(`/artifact-names/${segment(name)}`, { sha256: sha256.toLowerCase() });
      if (session.json) return printJson(entry);
      printText(`published ${entry.name} as ${entry.sha256} (${formatSize(entry.size)})`);
    });

  artifact
    .command('unpublish')
    .description('remove a published name (the artifact stays)')
    .argument('<name>', 'the published name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/artifact-names/${segment(name)}`);
      if (session.json) return printJson({ unpublished: name });
      printText(`unpublished ${name}`);
    });

  artifact
    .command('rm')
    .description('delete an artifact that no published name and no Pi tree uses')
    .argument('<sha256>', 'the artifact')
    .action(async (sha256: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/artifacts/${segment(sha256.toLowerCase())}`);
      if (session.json) return printJson({ deleted: sha256.toLowerCase() });
      printText(`deleted artifact ${sha256.toLowerCase()}`);
    });

  return artifact;
}
