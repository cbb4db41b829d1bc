import type { FleetSlot, Identifier } from '@muster/contract';
import type { Kysely, QueryCreator } from 'kysely';
import { eventValues, type NewEvent, notifyEvent } from '../../platform/db/event-store.ts';
import type { CertificateRow, Database, FleetSlotRow, MachineRow } from '../../platform/db/schema.ts';
import type { Tx } from '../../platform/db/transact.ts';
import { insertCertificate } from '../ca/store.ts';
import { insertIdentifiers, insertMachineRow } from '../machines/store.ts';

/** Tunnel ports in [first, last] that slots hold now, ascending. */
export async function usedTunnelPorts(db: Kysely<Database>, first: number, last: number): Promise<number[]> {
  const rows = await db
    .selectFrom('fleet_slots')
    .select('tunnel_port')
    .where('tunnel_port', '>=', first)
    .where('tunnel_port', '<=', last)
    .orderBy('tunnel_port')
    .execute();
  return rows.map((r) => Number(r.tunnel_port));
}

export async function insertSlots(db: Kysely<Database>, rows: FleetSlotRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500)
    await db
      .insertInto('fleet_slots')
      .values(rows.slice(i, i + 500))
      .execute();
}

/** The slot of a one-time password, with its fleet's name and whether the fleet has an IP pool. */
export function findSlotByOtp(db: Kysely<Database>, fleetName: string, otpHash: string) {
  return db
    .selectFrom('fleet_slots as s')
    .innerJoin('fleets as f', 'f.id', 's.fleet_id')
    .leftJoin('fleet_ip_pools as p', 'p.fleet_id', 's.fleet_id')
    .selectAll('s')
    .select('f.name as fleet')
    .select('p.cidr as pool')
    .where('f.name', '=', fleetName)
    .where('s.otp_hash', '=', otpHash)
    .executeTakeFirst();
}

export type SlotBinding = Pick<
  FleetSlotRow,
  'hwid' | 'machine_id' | 'ssh_public_key' | 'claimed_at' | 'claimed_from' | 'answer' | 'device_key'
>;

/**
 * A claim's writes: the slot bound to the device (only if no claim bound it first: false then, and the caller undoes
 * the rest by failing its transaction), the machine with its identifiers, its certificate and the events. On
 * PostgreSQL one statement, so that a claim costs one round trip, as an enrollment does.
 */
export async function bindSlotToNewMachine(
  tx: Tx,
  slotId: string,
  binding: SlotBinding,
  machine: MachineRow,
  identifiers: Identifier[],
  certificate: CertificateRow | null,
  events: NewEvent[],
): Promise<boolean> {
  const bind = (db: QueryCreator<Database>) =>
    db.updateTable('fleet_slots').set(binding).where('id', '=', slotId).where('hwid', 'is', null).where('released_at', 'is', null);
  if (tx.dialect === 'sqlite') {
    if (Number((await bind(tx.db).executeTakeFirst()).numUpdatedRows) !== 1) return false;
    await insertMachineRow(tx.db, machine);
    await insertIdentifiers(tx.db, machine.id, identifiers, machine.created_at);
    if (certificate) await insertCertificate(tx.db, certificate);
    for (const event of events) await tx.emit(event);
    return true;
  }
  const written = tx.db
    .with('s', (db) => bind(db).returning('id'))
    .with('m', (db) => db.insertInto('machines').values(machine))
    .with('i', (db) =>
      db.insertInto('identifiers').values(identifiers.map((i) => ({ ...i, machine_id: machine.id, created_at: machine.created_at }))),
    );
  // The certificate's CTE is referenced by nothing after it, so both shapes of the query read alike below.
  const withCertificate = certificate
    ? (written.with('c', (db) => db.insertInto('certificates').values(certificate)) as unknown as typeof written)
    : written;
  const rows = await withCertificate
    .with('e', (db) => db.insertInto('events').values(events.map(eventValues)).returningAll())
    .selectFrom('e')
    .select(notifyEvent.as('notified'))
    .select((eb) => eb.selectFrom('s').select('s.id').as('bound'))
    .execute();
  return rows.some((r) => r.bound !== null);
}

/** Keeps what a claim's answer keeps (its certificate), once issued after the slot was bound. */
export async function keepSlotAnswer(db: Kysely<Database>, slotId: string, answer: string): Promise<void> {
  await db.updateTable('fleet_slots').set({ answer }).where('id', '=', slotId).execute();
}

export function slotsOfFleet(db: Kysely<Database>, fleetId: string) {
  return db.selectFrom('fleet_slots').selectAll().where('fleet_id', '=', fleetId).orderBy('fleet_seq').execute();
}

export function slotFromRow(row: FleetSlotRow, fleet: string): FleetSlot {
  return {
    id: row.id,
    fleet,
    fleet_seq: row.fleet_seq,
    hostname: row.hostname,
    tunnel_port: row.tunnel_port,
    state: row.released_at ? 'released' : row.hwid ? 'claimed' : 'unclaimed',
    hwid: row.hwid,
    machine_id: row.machine_id,
    claimed_at: row.claimed_at,
    claimed_from: row.claimed_from,
    created_at: row.created_at,
  };
}

/** The tunnel port of the slot a machine claimed, while the slot holds one (not released); null without one. */
export async function tunnelPortOfMachine(db: Kysely<Database>, machineId: string): Promise<number | null> {
  const row = await db
    .selectFrom('fleet_slots')
    .select('tunnel_port')
    .where('machine_id', '=', machineId)
    .where('released_at', 'is', null)
    .where('tunnel_port', 'is not', null)
    .executeTakeFirst();
  return row ? Number(row.tunnel_port) : null;
}
