import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine } from '@muster/contract';
import { formatAgo, formatTime, renderFields, renderTable } from '../../packages/cli/src/output.ts';
import { eventLine } from '../../packages/cli/src/views/event.ts';
import { machineFields, machineTable } from '../../packages/cli/src/views/machine.ts';

const now = Date.parse('2025-06-01T12:00:00Z');

const machine: Machine = {
  id: 'm_01J0AAAAAAAAAAAAAAAAAAAAAA',
  state: 'enrolled',
  status: 'enrolled',
  hostname: 'pis-1',
  description: '',
  service_tag: 'AZJN-0042',
  mac_address: '00:11:22:33:44:55',
  fleet: 'pis',
  fleet_seq: 1,
  profile: null,
  profile_version: null,
  labels: { rack: 'r12', os: 'nixos' },
  identifiers: [
    { kind: 'serial', value: 'AZJN-0042' },
    { kind: 'mac', value: '00:11:22:33:44:55' },
  ],
  hardware: { cpu: 'BCM2711', memory_mb: 4096 },
  nixos_config: '{ ... }:\n{\n}\n',
  enrolled_at: '2025-06-01T11:00:00.123Z',
  last_seen_at: '2025-06-01T11:57:00Z',
  created_at: '2025-06-01T10:00:00Z',
  updated_at: '2025-06-01T11:00:00Z',
};

describe('tables', () => {
  test('columns are aligned on the widest cell, two spaces apart, without trailing spaces', () => {
    const table = renderTable(
      ['id', 'name', 'note'],
      [
        ['1', 'a', 'x'],
        ['22', 'longer name', ''],
      ],
    );
    assert.equal(table, ['ID  NAME         NOTE', '1   a            x', '22  longer name  -'].join('\n'));
  });

  test('missing values print as - and a newline inside a value cannot break a row', () => {
    assert.equal(renderTable(['a', 'b'], [[null, 'one\ntwo']]), ['A  B', '-  one two'].join('\n'));
  });

  test('a table with no rows is its header', () => {
    assert.equal(renderTable(['id', 'state'], []), 'ID  STATE');
  });

  test('wide characters count once', () => {
    assert.equal(renderTable(['a', 'b'], [['ü€', 'x']]), ['A   B', 'ü€  x'].join('\n'));
  });

  test('machines list with the columns ID, STATE, HOSTNAME, FLEET, SERIAL, MAC, LAST SEEN', () => {
    const other: Machine = {
      ...machine,
      id: 'm_2',
      hostname: null,
      fleet: null,
      service_tag: null,
      mac_address: null,
      identifiers: [],
      last_seen_at: null,
    };
    assert.equal(
      machineTable([machine, other], now),
      [
        'ID                            STATE     HOSTNAME  FLEET  SERIAL     MAC                LAST SEEN',
        'm_01J0AAAAAAAAAAAAAAAAAAAAAA  enrolled  pis-1     pis    AZJN-0042  00:11:22:33:44:55  3m ago',
        'm_2                           enrolled  -         -      -          -                  never',
      ].join('\n'),
    );
  });
});

describe('key: value blocks', () => {
  test('values are aligned and lists continue on indented lines', () => {
    assert.equal(
      renderFields([
        ['id', 'x'],
        ['labels', ['a=1', 'b=2']],
        ['skipped', undefined],
        ['none', []],
      ]),
      ['id:     x', 'labels: a=1', '        b=2', 'none:   -'].join('\n'),
    );
  });

  test('a machine shows identifiers, sorted labels, facts and times', () => {
    assert.equal(
      machineFields(machine, now),
      [
        'id:           m_01J0AAAAAAAAAAAAAAAAAAAAAA',
        'state:        enrolled',
        'hostname:     pis-1',
        'description:  -',
        'fleet:        pis (#1)',
        'identifiers:  serial:AZJN-0042',
        '              mac:00:11:22:33:44:55',
        'labels:       os=nixos',
        '              rack=r12',
        'hardware:     cpu=BCM2711',
        '              memory_mb=4096',
        'nixos config: 3 lines (the whole text with --json)',
        'enrolled:     2025-06-01T11:00:00Z',
        'last seen:    2025-06-01T11:57:00Z (3m ago)',
        'created:      2025-06-01T10:00:00Z',
        'updated:      2025-06-01T11:00:00Z',
      ].join('\n'),
    );
  });
});

describe('times and events', () => {
  test('ages read as a person says them', () => {
    assert.deepEqual(
      ['2025-06-01T11:59:30Z', '2025-06-01T09:00:00Z', '2025-05-20T12:00:00Z', '2025-06-01T12:00:05Z', null].map((t) => formatAgo(t, now)),
      ['30s ago', '3h ago', '12d ago', 'just now', 'never'],
    );
  });

  test('times drop milliseconds and absent times print as -', () => {
    assert.deepEqual([formatTime('2025-06-01T11:00:00.999Z'), formatTime(null)], ['2025-06-01T11:00:00Z', '-']);
  });

  test('a followed event is one line with its data summarised', () => {
    const line = eventLine({
      id: 7,
      type: 'machine.state_changed',
      machine_id: 'm_1',
      actor: 'user:alice',
      reason: 'checked\ncabling',
      data: { from: 'enrolled', to: 'configured' },
      created_at: '2025-06-01T11:00:00.5Z',
    });
    assert.equal(
      line,
      '2025-06-01T11:00:00Z  machine.state_changed       user:alice          checked cabling:  from=enrolled to=configured',
    );
  });
});
