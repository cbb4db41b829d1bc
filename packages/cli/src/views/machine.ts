import type { Machine } from '@muster/contract';
import { type Field, formatAgo, formatLabels, formatTime, renderFields, renderTable } from '../output.ts';

function identifierOf(machine: Machine, kind: string): string | undefined {
  return machine.identifiers.find((i) => i.kind === kind)?.value;
}

export function machineTable(machines: readonly Machine[], now: number = Date.now()): string {
  return renderTable(
    ['ID', 'STATE', 'HOSTNAME', 'FLEET', 'SERIAL', 'MAC', 'LAST SEEN'],
    machines.map((m) => [
      m.id,
      m.state,
      m.hostname,
      m.fleet,
      m.service_tag ?? identifierOf(m, 'serial'),
      m.mac_address ?? identifierOf(m, 'mac'),
      formatAgo(m.last_seen_at, now),
    ]),
  );
}

const maxFactWidth = 100;

/** Top-level facts, one per line; nested values as compact JSON, cut to fit a terminal. */
function hardwareLines(hardware: Machine['hardware']): string[] {
  return Object.entries(hardware ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => {
      const text = `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
      return text.length > maxFactWidth ? `${text.slice(0, maxFactWidth - 1)}…` : text;
    });
}

function seen(iso: string | null, now: number): string {
  return iso ? `${formatTime(iso)} (${formatAgo(iso, now)})` : 'never';
}

export function machineFields(m: Machine, now: number = Date.now()): string {
  const configLines = m.nixos_config ? m.nixos_config.replace(/\n$/, '').split('\n').length : 0;
  const fields: Field[] = [
    ['id', m.id],
    ['state', m.state],
    ['hostname', m.hostname],
    ['description', m.description],
    ['fleet', m.fleet ? `${m.fleet}${m.fleet_seq === null ? '' : ` (#${m.fleet_seq})`}` : null],
    ['identifiers', m.identifiers.map((i) => `${i.kind}:${i.value}`)],
    ['labels', formatLabels(m.labels)],
    ['hardware', hardwareLines(m.hardware)],
    ['nixos config', configLines === 0 ? null : `${configLines} lines (the whole text with --json)`],
    ['enrolled', formatTime(m.enrolled_at)],
    ['last seen', seen(m.last_seen_at, now)],
    ['created', formatTime(m.created_at)],
    ['updated', formatTime(m.updated_at)],
  ];
  return renderFields(fields);
}
