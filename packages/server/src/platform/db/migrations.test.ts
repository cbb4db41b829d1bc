import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from './connect.ts';
import { migrateToLatest } from './migrations.ts';

test('0006 lowers Pi serials stored in upper case, unless that would take another machine’s serial', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-migrations-'));
  const db = openDatabase({ dialect: 'sqlite', path: join(dir, 'muster.db') });
  try {
    await migrateToLatest(db.kysely, db.dialect, '0005_credentials');
    const at = new Date().toISOString();
    const machine = (id: string) => ({
      id,
      state: 'enrolled',
      hostname: '',
      description: '',
      facts: '{}',
      nixos_config: '',
      created_at: at,
      updated_at: at,
    });
    await db.kysely
      .insertInto('machines')
      .values([machine('m_a'), machine('m_b'), machine('m_c')])
      .execute();
    const serial = (value: string, machine_id: string) => ({ kind: 'serial', value, machine_id, created_at: at });
    await db.kysely
      .insertInto('identifiers')
      .values([
        serial('ABCD1234', 'm_a'), // a Pi serial typed in upper case: lowered
        serial('DELL-7XQ', 'm_a'), // no Pi serial: kept
        serial('FEED0001', 'm_b'), // the same Pi, discovered twice: both kept, for an operator to merge
        serial('feed0001', 'm_c'),
      ])
      .execute();

    const report = await migrateToLatest(db.kysely, db.dialect, '0006_pi_serial_case');
    assert.deepEqual(report.applied, ['0006_pi_serial_case']);
    const rows = await db.kysely.selectFrom('identifiers').select(['value', 'machine_id']).orderBy('value').execute();
    assert.deepEqual(
      rows.map((r) => `${r.value} ${r.machine_id}`),
      ['DELL-7XQ m_a', 'FEED0001 m_b', 'abcd1234 m_a', 'feed0001 m_c'],
    );
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('0011 keeps only the certificate of stored claim answers: agent commands rendered with the secret go', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-migrations-'));
  const db = openDatabase({ dialect: 'sqlite', path: join(dir, 'muster.db') });
  try {
    await migrateToLatest(db.kysely, db.dialect, '0010_profiles');
    const at = new Date().toISOString();
    const stored = JSON.stringify({
      status: 'approved',
      machine_id: 'm_a',
      certificate: '-----BEGIN CERTIFICATE-----',
      configuration: { server: 'http://muster', agent: { commands: ['echo 0123456789abcdef'], services: [] } },
    });
    await db.kysely
      .insertInto('token_claims')
      .values({ machine_id: 'm_a', token_id: 'e_1', hwid: 'hw-a', status: 'approved', answer: stored, source: '::1', created_at: at })
      .execute();
    await migrateToLatest(db.kysely, db.dialect, '0011_claim_keys');
    const row = await db.kysely.selectFrom('token_claims').select(['answer', 'device_key']).executeTakeFirstOrThrow();
    assert.deepEqual(
      { answer: JSON.parse(row.answer as string), device_key: row.device_key },
      { answer: { status: 'approved', machine_id: 'm_a', certificate: '-----BEGIN CERTIFICATE-----' }, device_key: null },
    );
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('0013 stores a Pi 3 or 4 serial kept in its 16-digit form as its 8 TFTP digits, unless another machine has them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muster-migrations-'));
  const db = openDatabase({ dialect: 'sqlite', path: join(dir, 'muster.db') });
  try {
    await migrateToLatest(db.kysely, db.dialect, '0012_shared_limits');
    const at = new Date().toISOString();
    const machine = (id: string, service_tag: string) => ({
      id,
      state: 'discovered',
      hostname: '',
      description: '',
      service_tag,
      facts: '{}',
      nixos_config: '',
      created_at: at,
      updated_at: at,
    });
    const rows: [string, string][] = [
      ['m_a', '10000000dca63201'], // a Pi 4 provisioned by its whole serial: shortened
      ['m_b', '00000000abcd1234'], // a Pi 3: shortened
      ['m_c', '0c8f7e5cbd989ae1'], // 16 hex digits of any make (a Pi 5's too): kept
      ['m_d', '10000000feed0001'], // its short form is m_e's (discovered by TFTP): both kept, for an operator to merge
      ['m_e', 'feed0001'],
      ['m_f', 'AZJN042'], // a service tag: kept
    ];
    await db.kysely
      .insertInto('machines')
      .values(rows.map(([id, serial]) => machine(id, serial)))
      .execute();
    await db.kysely
      .insertInto('identifiers')
      .values(rows.map(([machine_id, value]) => ({ kind: 'serial', value, machine_id, created_at: at })))
      .execute();

    const report = await migrateToLatest(db.kysely, db.dialect, '0013_pi_serial_prefix');
    assert.deepEqual(report.applied, ['0013_pi_serial_prefix']);
    const identifiers = await db.kysely.selectFrom('identifiers').select(['machine_id', 'value']).orderBy('machine_id').execute();
    const serials = await db.kysely.selectFrom('machines').select(['id', 'service_tag']).orderBy('id').execute();
    const expected = [
      ['m_a', 'dca63201'],
      ['m_b', 'abcd1234'],
      ['m_c', '0c8f7e5cbd989ae1'],
      ['m_d', '10000000feed0001'],
      ['m_e', 'feed0001'],
      ['m_f', 'AZJN042'],
    ];
    assert.deepEqual(
      identifiers.map((r) => [r.machine_id, r.value]),
      expected,
    );
    assert.deepEqual(
      serials.map((r) => [r.id, r.service_tag]),
      expected,
    );
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
