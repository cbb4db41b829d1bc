import type { EnrollmentToken } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { Database, EnrollmentTokenRow, TokenClaimRow } from '../../platform/db/schema.ts';

export function insertToken(db: Kysely<Database>, row: EnrollmentTokenRow) {
  return db.insertInto('enrollment_tokens').values(row).execute();
}

export function findTokenByHash(db: Kysely<Database>, hash: string) {
  return db.selectFrom('enrollment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
}

export function findTokenByName(db: Kysely<Database>, name: string) {
  return db.selectFrom('enrollment_tokens').selectAll().where('name', '=', name).executeTakeFirst();
}

export function listTokenRows(db: Kysely<Database>) {
  return db.selectFrom('enrollment_tokens').selectAll().orderBy('name').execute();
}

export async function revokeTokenRow(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('enrollment_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
}

/** Counts one use if the token has one left; false when it is used up (also when another claim took the last). */
export async function takeTokenUse(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db
    .updateTable('enrollment_tokens')
    .set((eb) => ({ uses: eb('uses', '+', 1) }))
    .where('id', '=', id)
    .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export function fleetNames(db: Kysely<Database>, ids: string[]) {
  return ids.length ? db.selectFrom('fleets').select(['id', 'name']).where('id', 'in', ids).execute() : Promise.resolve([]);
}

export function insertTokenClaim(db: Kysely<Database>, row: TokenClaimRow) {
  return db.insertInto('token_claims').values(row).execute();
}

export function findClaimByHwid(db: Kysely<Database>, hwid: string) {
  return db.selectFrom('token_claims').selectAll().where('hwid', '=', hwid).executeTakeFirst();
}

export function findClaimByMachine(db: Kysely<Database>, machineId: string) {
  return db.selectFrom('token_claims').selectAll().where('machine_id', '=', machineId).executeTakeFirst();
}

/** Decides a pending claim; false when it was decided already. */
export async function decideClaim(
  db: Kysely<Database>,
  machineId: string,
  fields: Pick<TokenClaimRow, 'status' | 'answer' | 'decided_at' | 'decided_by'>,
): Promise<boolean> {
  const result = await db
    .updateTable('token_claims')
    .set({ ...fields, csr: null })
    .where('machine_id', '=', machineId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export function tokenFromRow(row: EnrollmentTokenRow, fleet: string | null): EnrollmentToken {
  return {
    id: row.id,
    name: row.name,
    fleet,
    labels: JSON.parse(row.labels) as Record<string, string>,
    profile: row.profile,
    approval: row.approval,
    max_uses: row.max_uses,
    uses: Number(row.uses),
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    created_by: row.created_by,
    created_at: row.created_at,
  };
}
