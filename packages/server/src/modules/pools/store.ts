import type { Kysely } from 'kysely';
import type { Database } from '../../platform/db/schema.ts';

export function findPool(db: Kysely<Database>, fleetId: string) {
  return db.selectFrom('fleet_ip_pools').selectAll().where('fleet_id', '=', fleetId).executeTakeFirst();
}

export async function savePool(db: Kysely<Database>, fleetId: string, cidr: string, at: string): Promise<void> {
  await db
    .insertInto('fleet_ip_pools')
    .values({ fleet_id: fleetId, cidr, created_at: at })
    .onConflict((oc) => oc.column('fleet_id').doUpdateSet({ cidr }))
    .execute();
}

export function poolAllocations(db: Kysely<Database>, fleetId: string) {
  return db.selectFrom('ip_allocations').select(['address', 'machine_id']).where('fleet_id', '=', fleetId).execute();
}

export async function insertAllocation(
  db: Kysely<Database>,
  fleetId: string,
  address: string,
  machineId: string,
  at: string,
): Promise<void> {
  await db.insertInto('ip_allocations').values({ fleet_id: fleetId, address, machine_id: machineId, created_at: at }).execute();
}

/** The address a machine holds from its fleet's pool, or null. */
export async function machineAddress(db: Kysely<Database>, machineId: string): Promise<string | null> {
  const row = await db.selectFrom('ip_allocations').select('address').where('machine_id', '=', machineId).executeTakeFirst();
  return row?.address ?? null;
}

/** The addresses a machine holds from its fleet's IP pool. */
export async function machineAddresses(db: Kysely<Database>, machineId: string): Promise<string[]> {
  const rows = await db.selectFrom('ip_allocations').select('address').where('machine_id', '=', machineId).execute();
  return rows.map((row) => row.address);
}
