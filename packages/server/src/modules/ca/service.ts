import { type CaInfo, type Certificate, MusterError } from '@muster/contract';
import { type CaMaterial, CertificateAuthority, createCa, type IssuePolicy } from '../../platform/crypto/ca.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import { insertSettingIfAbsent, readSetting } from '../../platform/db/settings.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import {
  certificateFromRow,
  findCertificate,
  insertCertificate,
  machineCertificates,
  revokeCertificateRow,
  revokedCertificates,
} from './store.ts';

// The CA's key is a sealed setting (docs/secrets.md), its certificate a plain one; both are made once, by the
// first server to start, under a lock so that two replicas starting together make one CA.
const keySetting = 'ca_key';
const certificateSetting = 'ca_certificate';
const advisoryClass = 0x6361; // 'ca'

async function loadOrCreate(tx: Transactor, keyring: Keyring): Promise<CaMaterial> {
  return tx.run(async (t) => {
    await lockForTransaction(t, advisoryClass, 1);
    const sealed = await readSetting(t.db, keySetting);
    const certificatePem = await readSetting(t.db, certificateSetting);
    if (sealed && certificatePem) return { keyPem: keyring.open(sealed, keySetting), certificatePem };
    const made = await createCa('muster CA');
    await insertSettingIfAbsent(t.db, keySetting, keyring.seal(made.keyPem, keySetting));
    await insertSettingIfAbsent(t.db, certificateSetting, made.certificatePem);
    await t.emit({ type: 'ca.created', actor: 'system', data: { subject: 'CN=muster CA' } });
    return made;
  });
}

/** What a device route answers a caller without a valid muster certificate. */
export const noDeviceCertificate = () =>
  new MusterError('unauthenticated', 'This needs a valid muster device certificate, presented over mutual TLS on the --tls-listen port');

/** muster's certificate authority: issues device certificates, revokes them, and publishes the CRL. */
export class CaService {
  readonly #tx: Transactor;
  readonly #ca: CertificateAuthority;
  readonly #validityDays: number;

  private constructor(tx: Transactor, ca: CertificateAuthority, validityDays: number) {
    this.#tx = tx;
    this.#ca = ca;
    this.#validityDays = validityDays;
  }

  static async open(tx: Transactor, keyring: Keyring, validitySeconds: number): Promise<CaService> {
    const material = await loadOrCreate(tx, keyring);
    return new CaService(tx, await CertificateAuthority.load(material), Math.max(1, validitySeconds / 86_400));
  }

  get pem(): string {
    return this.#ca.pem;
  }

  async info(): Promise<CaInfo> {
    const cert = this.#ca.certificate;
    return {
      subject: cert.subject,
      fingerprint_sha256: await this.#ca.fingerprint(),
      not_before: cert.notBefore.toISOString(),
      not_after: cert.notAfter.toISOString(),
      certificate: this.#ca.pem,
    };
  }

  /** Issues a certificate for a machine from its CSR inside the caller's transaction, and records it. */
  async issueInTx(
    tx: Tx,
    machineId: string,
    csrPem: string,
    subject: string | IssuePolicy,
    actor: string,
    source?: string,
  ): Promise<Certificate> {
    const issued = await this.#ca.issue(csrPem, subject, this.#validityDays);
    const row = {
      serial: issued.serial,
      machine_id: machineId,
      subject: issued.subject,
      not_before: issued.notBefore.toISOString(),
      not_after: issued.notAfter.toISOString(),
      pem: issued.pem,
      revoked_at: null,
      revoke_reason: null,
      created_at: now(),
    };
    await insertCertificate(tx.db, row);
    await tx.emit({
      type: 'certificate.issued',
      machineId,
      actor,
      data: { serial: issued.serial, subject: issued.subject, not_after: row.not_after, ...(source ? { source } : {}) },
    });
    return certificateFromRow(row);
  }

  /**
   * The machine a client certificate stands for: one muster issued, not revoked, not expired, for a machine.
   * `serial` is what TLS reports, hex without leading zeros.
   */
  async deviceCertificate(serial: string | null): Promise<Certificate> {
    const row = serial ? await findCertificate(this.#tx.db, serial.toLowerCase().padStart(32, '0')) : undefined;
    if (!row?.machine_id || row.revoked_at || row.not_after <= now()) {
      throw new MusterError(
        'unauthenticated',
        'This needs a valid muster device certificate, presented over mutual TLS on the --tls-listen port',
      );
    }
    return certificateFromRow(row);
  }

  /** A new certificate for the machine of a valid one, from a new CSR (the device's next key); the old one stays valid until it expires. */
  async renew(current: Certificate, csrPem: string, subject: string | IssuePolicy, source: string): Promise<Certificate> {
    return this.#tx.run(async (tx) => {
      const issued = await this.issueInTx(tx, current.machine_id as string, csrPem, subject, 'device', source);
      await tx.emit({
        type: 'certificate.renewed',
        machineId: current.machine_id,
        actor: 'device',
        data: { from: current.serial, to: issued.serial, source },
      });
      return issued;
    });
  }

  /** A TLS server certificate for muster's HTTPS listener (not recorded: made at each start). */
  serverCertificate(names: { dnsNames: string[]; ipAddresses: string[] }): { certificatePem: string; keyPem: string } {
    return this.#ca.serverCertificate(names);
  }

  async listForMachine(machineId: string): Promise<Certificate[]> {
    return (await machineCertificates(this.#tx.db, machineId)).map(certificateFromRow);
  }

  async revoke(actor: string, serial: string, reason = 'revoked by an operator'): Promise<Certificate> {
    const key = serial.toLowerCase();
    return this.#tx.run(async (tx) => {
      const row = await findCertificate(tx.db, key);
      if (!row) throw new MusterError('not_found', `No certificate with serial ${serial}`);
      if (await revokeCertificateRow(tx.db, key, now(), reason)) {
        await tx.emit({ type: 'certificate.revoked', machineId: row.machine_id, actor, reason, data: { serial: key } });
      }
      return certificateFromRow((await findCertificate(tx.db, key)) ?? row);
    });
  }

  /** The CRL (PEM), made on request: it lists every revoked certificate that has not expired. */
  async crl(): Promise<string> {
    const rows = await revokedCertificates(this.#tx.db, now());
    const revoked = rows.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at as string) }));
    return this.#ca.crl(revoked, Math.floor(Date.now() / 1000));
  }
}
