import type { Certificate } from '@muster/contract';
import type { Kysely } from 'kysely';
import type { CertificateRow, Database } from '../../platform/db/schema.ts';

export function insertCertificate(db: Kysely<Database>, row: CertificateRow) {
  return db.insertInto('certificates').values(row).execute();
}

export function findCertificate(db: Kysely<Database>, serial: string) {
  return db.selectFrom('certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
}

export function machineCertificates(db: Kysely<Database>, machineId: string) {
  return db.selectFrom('certificates').selectAll().where('machine_id', '=', machineId).orderBy('created_at').execute();
}

/** Revokes one certificate if it is not revoked yet; true when this call revoked it. */
export async function revokeCertificateRow(db: Kysely<Database>, serial: string, at: string, reason: string): Promise<boolean> {
  const result = await db
    .updateTable('certificates')
    .set({ revoked_at: at, revoke_reason: reason })
    .where('serial', '=', serial)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Revoked certificates that have not expired yet: what a CRL lists. */
export function revokedCertificates(db: Kysely<Database>, now: string) {
  return db
    .selectFrom('certificates')
    .select(['serial', 'revoked_at'])
    .where('revoked_at', 'is not', null)
    .where('not_after', '>', now)
    .orderBy('serial')
    .execute();
}

/** When a device should renew: two thirds into the validity, as ACME clients and step-ca's agents do. */
export function renewAfter(notBefore: string, notAfter: string): string {
  const from = Date.parse(notBefore);
  return new Date(from + ((Date.parse(notAfter) - from) * 2) / 3).toISOString();
}

export function certificateFromRow(row: CertificateRow): Certificate {
  return {
    serial: row.serial,
    machine_id: row.machine_id,
    subject: row.subject,
    not_before: row.not_before,
    not_after: row.not_after,
    renew_after: renewAfter(row.not_before, row.not_after),
    revoked_at: row.revoked_at,
    revoke_reason: row.revoke_reason,
    certificate: row.pem,
  };
}
