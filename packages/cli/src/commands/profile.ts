import { readFile } from 'node:fs/promises';
import type {
  ExplainRequest,
  Explanation,
  Profile,
  ProfileApplied,
  ProfileRolloutResult,
  ProfileSpec,
  ProfileVersion,
} from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createTwoFilesPatch } from 'diff';
import { isMap, LineCounter, parseDocument, stringify } from 'yaml';
import { collect, parseLabel } from '../arguments.ts';
import { segment } from '../client.ts';
import { formatTime, printJson, printNote, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

// Profiles (docs/profiles.md). A profile file is YAML or JSON: the spec, with an optional top-level `name`.

interface ProfileFile {
  name: string | null;
  spec: ProfileSpec;
  /** Where a JSON pointer into the spec (/spec/files/0/mode) is in the file, for errors that point at a line. */
  lineOf(pointer: string): number | null;
}

/** Reads a profile file; a YAML or JSON syntax error names the line. */
export async function readProfileFile(file: string): Promise<ProfileFile> {
  const text = await readFile(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    const line = first.linePos?.[0].line;
    throw new MusterError('bad_request', `${file}${line ? `:${line}` : ''}: ${first.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) throw new MusterError('bad_request', `${file}: a profile is a mapping of keys (hostname, files, …)`);
  const { name, ...spec } = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  if (name !== undefined && typeof name !== 'string') throw new MusterError('bad_request', `${file}: name must be a string`);
  return {
    name: name ?? null,
    spec: spec as ProfileSpec,
    lineOf(pointer: string) {
      const path = pointer
        .replace(/^\/spec\/?/, '')
        .split('/')
        .filter((p) => p !== '')
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
      // The deepest node of the path the file has: an unknown key's error points at its parent.
      for (let n = path.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : (doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined);
        if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
      }
      return null;
    },
  };
}

/** A validation failure from the server, each field error with the line of the file it is about. */
function pointAtLines(error: unknown, file: string, profile: ProfileFile): never {
  if (error instanceof MusterError && error.errors.length > 0) {
    const where = error.errors.map((e) => {
      const line = profile.lineOf(e.path);
      return `${file}${line ? `:${line}` : ''}: ${e.path.replace(/^\/spec/, '') || '/'} ${e.message}`;
    });
    for (const line of where) process.stderr.write(`${line}\n`);
    throw new MusterError(error.code, `${file} is not a valid profile (${where.length} error${where.length === 1 ? '' : 's'} above)`);
  }
  throw error;
}

function profileTable(profiles: readonly Profile[]): string {
  return renderTable(
    ['NAME', 'VERSION', 'MACHINES', 'UPDATED', 'DESCRIPTION'],
    profiles.map((p) => [p.name, p.version, p.machine_count, formatTime(p.updated_at), p.description.split('\n')[0]]),
  );
}

function versionYaml(v: ProfileVersion): string {
  return stringify({ name: v.name, ...v.spec }, { lineWidth: 0 });
}

function parseVersion(value: string): number {
  if (!/^[1-9]\d{0,8}$/.test(value)) throw new InvalidArgumentError('expected a version number, e.g. 3');
  return Number(value);
}

export function profileCommand(): Command {
  const profile = new Command('profile').description('versioned profiles: what a machine gets (files, host name, certificate, hooks)');

  profile
    .command('apply')
    .description('apply a profile file (YAML or JSON): a new version when it differs from the current one')
    .argument('<file>', 'the profile; its top-level name, or --name, names it')
    .option('--name <name>', "the profile's name, when the file has none")
    .option('--comment <text>', 'why, kept with the version')
    .addHelpText('after', '\nExample:\n  muster profile apply jetson.yaml --comment "longer certificates"')
    .action(async (file: string, options: { name?: string; comment?: string }, command: Command) => {
      const read = await readProfileFile(file);
      const name = options.name ?? read.name;
      if (!name) throw new MusterError('bad_request', `${file} has no top-level name; give --name`);
      const session = await openSession(command);
      const applied = await session.api
        .put<ProfileApplied>(`/profiles/${segment(name)}`, { spec: read.spec, comment: options.comment })
        .catch((error: unknown) => pointAtLines(error, file, read));
      if (session.json) return printJson(applied);
      printText(
        applied.changed
          ? `profile ${name} is at version ${applied.version.version}`
          : `profile ${name} unchanged: version ${applied.version.version} is the same`,
      );
      if (applied.changed && applied.profile.machine_count > 0)
        printNote(`${applied.profile.machine_count} machine(s) keep their version until: muster profile rollout ${name}`);
    });

  profile
    .command('ls')
    .description('list profiles with their current version and how many machines hold each')
    .addHelpText('after', '\nExample:\n  muster profile ls')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const { items } = await session.api.get<{ items: Profile[] }>('/profiles');
      if (session.json) printJson(items);
      else printText(profileTable(items));
    });

  profile
    .command('show')
    .description('print a version of a profile as YAML (the current one by default)')
    .argument('<name>', 'profile name')
    .argument('[version]', 'that version (default: the current one)', parseVersion)
    .addHelpText('after', '\nExample:\n  muster profile show jetson 2 > jetson.yaml')
    .action(async (name: string, wanted: number | undefined, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const version = wanted ?? (await session.api.get<Profile>(`/profiles/${segment(name)}`)).version;
      const found = await session.api.get<ProfileVersion>(`/profiles/${segment(name)}/versions/${version}`);
      if (session.json) printJson(found);
      else printText(`# version ${found.version}, ${formatTime(found.created_at)} by ${found.actor}\n${versionYaml(found).trimEnd()}`);
    });

  profile
    .command('history')
    .description('every version of a profile, newest first')
    .argument('<name>', 'profile name')
    .addHelpText('after', '\nExample:\n  muster profile history jetson')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const { items } = await session.api.get<{ items: ProfileVersion[] }>(`/profiles/${segment(name)}/versions`);
      if (session.json) return printJson(items);
      printText(
        renderTable(
          ['VERSION', 'CREATED', 'BY', 'DIGEST', 'COMMENT'],
          items.map((v) => [v.version, formatTime(v.created_at), v.actor, v.digest.slice(0, 12), v.comment]),
        ),
      );
    });

  profile
    .command('diff')
    .description('what changes between two versions, or between the current version and a file (unified diff)')
    .argument('<name>', 'profile name')
    .argument('[file]', 'a profile file to compare with the current version')
    .option('--from <n>', 'the older version (default: the one before --to)', parseVersion)
    .option('--to <n>', 'the newer version (default: the current one)', parseVersion)
    .addHelpText('after', '\nExamples:\n  muster profile diff jetson jetson.yaml\n  muster profile diff jetson --from 1 --to 3')
    .action(async (name: string, file: string | undefined, options: { from?: number; to?: number }, command: Command) => {
      const session = await openSession(command);
      const versionAt = (n: number) => session.api.get<ProfileVersion>(`/profiles/${segment(name)}/versions/${n}`);
      const current = (await session.api.get<Profile>(`/profiles/${segment(name)}`)).version;
      let older: { label: string; text: string };
      let newer: { label: string; text: string };
      if (file) {
        const read = await readProfileFile(file);
        older = { label: `${name} v${current}`, text: versionYaml(await versionAt(current)) };
        newer = { label: file, text: stringify({ name, ...read.spec }, { lineWidth: 0 }) };
      } else {
        const to = options.to ?? current;
        const from = options.from ?? to - 1;
        if (from < 1) throw new MusterError('bad_request', `${name} has only version ${to}; give a file or --from`);
        older = { label: `${name} v${from}`, text: versionYaml(await versionAt(from)) };
        newer = { label: `${name} v${to}`, text: versionYaml(await versionAt(to)) };
      }
      const patch = createTwoFilesPatch(older.label, newer.label, older.text, newer.text, '', '', { context: 3 });
      const changed = older.text !== newer.text;
      if (session.json) return printJson({ changed, diff: changed ? patch : '' });
      printText(changed ? patch.replace(/^=+\n/, '').replace(/\t$/gm, '').trimEnd() : 'no difference');
    });

  profile
    .command('rollback')
    .description('make an earlier version current again (as a new version; history is kept)')
    .argument('<name>', 'profile name')
    .argument('<version>', 'the version to go back to', parseVersion)
    .option('--comment <text>', 'why')
    .addHelpText('after', '\nExample:\n  muster profile rollback jetson 2')
    .action(async (name: string, version: number, options: { comment?: string }, command: Command) => {
      const session = await openSession(command);
      const applied = await session.api.post<ProfileApplied>(`/profiles/${segment(name)}/rollback`, { version, comment: options.comment });
      if (session.json) return printJson(applied);
      printText(
        applied.changed
          ? `profile ${name} is at version ${applied.version.version}, the same as version ${version}`
          : `profile ${name} unchanged: version ${version} is the current one`,
      );
    });

  profile
    .command('rollout')
    .description('move machines on the profile (those with every --label given) to its current version')
    .argument('<name>', 'profile name')
    .option('--label <key=value>', 'only machines with this label; repeatable', collect(parseLabel))
    .option('--dry-run', 'list the machines and change nothing')
    .addHelpText('after', '\nExample:\n  muster profile rollout jetson --label site=oslo --dry-run')
    .action(async (name: string, options: { label?: [string, string][]; dryRun?: boolean }, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.post<ProfileRolloutResult>(`/profiles/${segment(name)}/rollout`, {
        labels: options.label ? Object.fromEntries(options.label) : undefined,
        dry_run: options.dryRun ?? false,
      });
      if (session.json) return printJson(result);
      printText(
        renderTable(
          ['MACHINE', 'HOSTNAME', 'FROM', 'TO'],
          result.machines.map((m) => [m.id, m.hostname, m.from, result.version]),
        ),
      );
      printNote(`${result.machines.length} machine(s) ${result.dry_run ? 'would move' : 'moved'} to version ${result.version}`);
    });

  profile
    .command('assign')
    .description('give machines the profile, at its current version or --profile-version N')
    .argument('<name>', 'profile name')
    .argument('<machines...>', 'machine ids or identifiers (serial:AZJN-0042)')
    .option('--profile-version <n>', 'that version instead of the current one', parseVersion)
    .addHelpText('after', '\nExample:\n  muster profile assign jetson serial:AZJN-0042 serial:AZJN-0043')
    .action(async (name: string, machines: string[], options: { profileVersion?: number }, command: Command) => {
      const session = await openSession(command);
      const result = await session.api.post<ProfileRolloutResult>(`/profiles/${segment(name)}/assign`, {
        machines,
        version: options.profileVersion,
      });
      if (session.json) return printJson(result);
      printNote(`${result.machines.length} machine(s) now have ${name} version ${result.version}`);
    });

  profile
    .command('rm')
    .description('delete a profile and its history (refused while machines, rules or tokens use it)')
    .argument('<name>', 'profile name')
    .addHelpText('after', '\nExample:\n  muster profile rm old-lab')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/profiles/${segment(name)}`);
      if (session.json) printJson({ deleted: name });
      else printText(`deleted profile ${name}`);
    });

  profile
    .command('schema')
    .description('print the JSON Schema profile files are validated against (for editors)')
    .addHelpText('after', '\nExample:\n  muster profile schema > muster-profile.schema.json')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      printJson(await session.api.get('/schemas/profile'));
    });

  return profile;
}

function explanationText(e: Explanation): string {
  const out: string[] = [];
  out.push(
    renderFields([
      ['machine', e.machine_id ?? '(does not exist yet)'],
      ['door', e.door],
      ['rule', e.rule ?? '(none matches)'],
      ['action', e.action],
      ['fleet', e.fleet],
      [
        'profile',
        e.profile ? `${e.profile.name} v${e.profile.version} (current v${e.profile.current_version}; from the ${e.profile.from})` : null,
      ],
      ['approval', e.approval],
      ['labels', Object.entries(e.labels).map(([k, v]) => `${k}=${v}`)],
      ['hostname', e.rendered?.hostname ?? null],
    ]),
  );
  out.push('', 'Rules, in the order they are tried:');
  for (const r of e.rules) {
    const mark = r.chosen ? '*' : r.matched ? '=' : '-';
    out.push(`  ${mark} ${r.name} (priority ${r.priority}, ${r.action})${r.reasons.length ? `: ${r.reasons.join('; ')}` : ''}`);
  }
  if (e.rendered) {
    const c = e.rendered.certificate as { common_name: string; dns_names: string[]; ip_addresses: string[] };
    out.push('', `Certificate: CN=${c.common_name}; DNS ${c.dns_names.join(', ') || '-'}; IP ${c.ip_addresses.join(', ') || '-'}`);
    for (const f of e.rendered.files) {
      out.push('', `File ${f.path} (mode ${f.mode}, owner ${f.owner}):`);
      out.push(
        ...f.content
          .replace(/\n$/, '')
          .split('\n')
          .map((l) => `  | ${l}`),
      );
    }
    if (e.rendered.agent.commands.length) out.push('', `Agent runs: ${e.rendered.agent.commands.join('; ')}`);
  }
  for (const error of e.errors) out.push('', `error: ${error}`);
  return out.join('\n');
}

export function explainCommand(): Command {
  return new Command('explain')
    .description('which rule places a machine and why the others do not, its profile version and the files it gets (secrets hidden)')
    .argument('[machine]', 'machine id or identifier (serial:AZJN-0042); leave out with --facts for a machine not yet seen')
    .option('--facts <file>', 'facts (YAML or JSON) of a machine that does not exist yet')
    .option('--serial <serial>', 'its serial, with --facts')
    .option('--mac <mac>', 'its MAC address, with --facts')
    .option('--hwid <hwid>', 'its hardware id, with --facts')
    .option('--label <key=value>', 'a label the door gives (an enrollment token’s), with --facts; repeatable', collect(parseLabel))
    .addOption(
      new Option('--door <door>', 'the door to explain for (default: the one it came through; enroll with --facts)').choices([
        'pi',
        'ipxe',
        'enroll',
        'claim',
      ]),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  muster explain serial:AZJN-0042\n  muster explain --facts orin.yaml --serial AZJN-0100 --door enroll',
    )
    .action(
      async (
        machine: string | undefined,
        options: {
          facts?: string;
          serial?: string;
          mac?: string;
          hwid?: string;
          label?: [string, string][];
          door?: ExplainRequest['door'];
        },
        command: Command,
      ) => {
        if (!machine && !options.facts && !options.serial && !options.mac)
          throw new MusterError('bad_request', 'give a machine, or --facts FILE (and --serial or --mac) for one not yet seen');
        if (machine && (options.facts || options.serial || options.mac || options.hwid || options.label))
          throw new MusterError(
            'bad_request',
            '--facts, --serial, --mac, --hwid and --label describe a machine not yet seen; give them without MACHINE',
          );
        const session = await openSession(command);
        let explained: Explanation;
        if (machine) {
          explained = await session.api.get<Explanation>(`/machines/${segment(machine)}/explain`, { door: options.door });
        } else {
          let facts: Record<string, unknown> | undefined;
          if (options.facts) {
            const doc = parseDocument(await readFile(options.facts, 'utf8'));
            if (doc.errors.length) throw new MusterError('bad_request', `${options.facts}: ${doc.errors[0].message.split('\n')[0]}`);
            if (!isMap(doc.contents))
              throw new MusterError('bad_request', `${options.facts}: facts are a mapping (product: …, memory_gb: …)`);
            facts = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
          }
          explained = await session.api.post<Explanation>('/explain', {
            door: options.door,
            serial: options.serial,
            mac: options.mac,
            hwid: options.hwid,
            facts,
            labels: options.label ? Object.fromEntries(options.label) : undefined,
          } satisfies ExplainRequest);
        }
        if (session.json) printJson(explained);
        else printText(explanationText(explained));
      },
    );
}
