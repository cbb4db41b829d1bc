import type { FleetSlot } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { Database, FleetSlotRow } from '../../platform/db/schema.ts';

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

export function findSlotByOtp(db: Kysely<Database>, fleetName: string, otpHash: string) {
  return db
    .selectFrom('fleet_slots as s')
    .innerJoin('fleets as f', 'f.id', 's.fleet_id')
    .selectAll('s')
    .select('f.name as fleet')
    .where('f.name', '=', fleetName)
    .where('s.otp_hash', '=', otpHash)
    .executeTakeFirst();
}

/** Binds an unclaimed slot to a device; false when another claim bound it first. */
export async function bindSlot(
  db: Kysely<Database>,
  id: string,
  fields: Pick<FleetSlotRow, 'hwid' | 'machine_id' | 'ssh_public_key' | 'claimed_at' | 'claimed_from' | 'answer'>,
): Promise<boolean> {
  const result = await db
    .updateTable('fleet_slots')
    .set(fields)
    .where('id', '=', id)
    .where('hwid', 'is', null)
    .where('released_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
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
