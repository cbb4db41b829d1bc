import { type Rule, type RulePut, ruleActions, ruleApprovals, ruleDoors } from '@muster/contract';
import { Command, InvalidArgumentError, Option } from 'commander';
import { collect, parseLabel } from '../arguments.ts';
import { segment } from '../client.ts';
import { formatTime, printJson, printText, renderFields, renderTable } from '../output.ts';
import { openSession } from '../session.ts';

function ruleTable(rules: readonly Rule[]): string {
  return renderTable(
    ['NAME', 'PRIORITY', 'DOOR', 'MATCHES', 'ACTION', 'FLEET', 'PROFILE', 'PI TREE'],
    rules.map((r) => [r.name, r.priority, r.door, conditions(r).join(' '), r.action, r.fleet, r.profile, r.pi_tree]),
  );
}

function conditions(r: Rule): string[] {
  return [
    ...(r.serial_pattern ? [`serial=${r.serial_pattern}`] : []),
    ...(r.mac_prefix ? [`mac=${r.mac_prefix}`] : []),
    ...Object.entries(r.facts).map(([k, v]) => `fact:${k}=${v}`),
    ...Object.entries(r.match_labels).map(([k, v]) => `label:${k}=${v}`),
  ];
}

function ruleFields(r: Rule): string {
  return renderFields([
    ['name', r.name],
    ['priority', r.priority],
    ['door', r.door],
    ['serial pattern', r.serial_pattern],
    ['mac prefix', r.mac_prefix],
    ['action', r.action],
    ['facts', Object.entries(r.facts).map(([k, v]) => `${k}=${v}`)],
    ['match labels', Object.entries(r.match_labels).map(([k, v]) => `${k}=${v}`)],
    ['pi tree', r.pi_tree],
    ['fleet', r.fleet],
    ['profile', r.profile],
    ['approval', r.approval],
    ['labels', Object.entries(r.labels).map(([k, v]) => `${k}=${v}`)],
    ['updated', formatTime(r.updated_at)],
  ]);
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 100000) throw new InvalidArgumentError('expected a whole number from 0 to 100000');
  return n;
}

interface SetOptions {
  priority?: number;
  door?: RulePut['door'];
  serial?: string;
  mac?: string;
  action: RulePut['action'];
  piTree?: string;
  label?: [string, string][];
  fact?: [string, string][];
  matchLabel?: [string, string][];
  fleet?: string;
  profile?: string;
  approval?: 'auto' | 'pending';
}

export function ruleCommand(): Command {
  const rule = new Command('rule').description(
    'rules that place machines at every door (pi, ipxe, enroll, claim): discover, ignore or refuse; fleet, profile, labels, approval',
  );

  rule
    .command('ls')
    .description('list rules in the order they are tried (priority, then the more specific, then name)')
    .action(async (_options: unknown, command: Command) => {
      const session = await openSession(command);
      const { items } = await session.api.get<{ items: Rule[] }>('/rules');
      if (session.json) printJson(items);
      else printText(ruleTable(items));
    });

  rule
    .command('show')
    .description('show one rule')
    .argument('<name>', 'rule name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      const found = await session.api.get<Rule>(`/rules/${segment(name)}`);
      if (session.json) printJson(found);
      else printText(ruleFields(found));
    });

  rule
    .command('set')
    .description('create or replace a rule')
    .argument('<name>', 'rule name')
    .addOption(new Option('--action <action>', 'what to do with a matching unseen machine').choices([...ruleActions]).makeOptionMandatory())
    .addOption(new Option('--door <door>', 'front door it applies to (default any)').choices([...ruleDoors]))
    .option('--serial <glob>', 'serial pattern, e.g. "dca6*" or "[0-7]*"')
    .option('--mac <prefix>', 'MAC prefix, e.g. dc:a6:32')
    .option('--pi-tree <name>', 'Pi boot tree for the machines it discovers')
    .option('--priority <n>', 'lower is tried first (default 100)', parsePriority)
    .option('--label <key=value...>', 'label for the machines it places; repeat for more', collect(parseLabel))
    .option(
      '--fact <path=condition>',
      'match a fact: a glob (product=Jetson*) or a comparison (memory_gb=>=8); repeatable',
      collect(parseLabel),
    )
    .option('--match-label <key=glob>', "match a label the door gives (an enrollment token's); repeatable", collect(parseLabel))
    .option('--fleet <fleet>', 'fleet the machines it places join')
    .option('--profile <profile>', 'profile the machines it places get (its current version)')
    .addOption(new Option('--approval <mode>', 'claims: approved at once, or held for an operator').choices([...ruleApprovals]))
    .addHelpText(
      'after',
      '\nExamples:\n  muster rule set lab-pis --door pi --serial "ab*" --action discover --pi-tree lab\n  muster rule set quarantine --serial "dead*" --action refuse\n  muster rule set jetsons --door enroll --fact product="Jetson*" --fact memory_gb=">=8" --action discover --fleet orin --profile jetson',
    )
    .action(async (name: string, options: SetOptions, command: Command) => {
      const session = await openSession(command);
      const body: RulePut = {
        action: options.action,
        door: options.door,
        serial_pattern: options.serial,
        mac_prefix: options.mac,
        pi_tree: options.piTree,
        priority: options.priority,
        labels: options.label ? Object.fromEntries(options.label) : undefined,
        facts: options.fact ? Object.fromEntries(options.fact) : undefined,
        match_labels: options.matchLabel ? Object.fromEntries(options.matchLabel) : undefined,
        fleet: options.fleet,
        profile: options.profile,
        approval: options.approval,
      };
      const saved = await session.api.put<Rule>(`/rules/${segment(name)}`, body);
      if (session.json) printJson(saved);
      else printText(ruleFields(saved));
    });

  rule
    .command('rm')
    .description('delete a rule')
    .argument('<name>', 'rule name')
    .action(async (name: string, _options: unknown, command: Command) => {
      const session = await openSession(command);
      await session.api.delete(`/rules/${segment(name)}`);
      if (session.json) printJson({ deleted: name });
      else printText(`deleted rule ${name}`);
    });

  return rule;
}
