import { type CaInfo, type Certificate, MusterError } from '@muster/contract';
import { type CaMaterial, CertificateAuthority, checkImport, createCa, deviceUsages, type IssuePolicy } from '../../platform/crypto/ca.ts';
import { now } from '../../platform/crypto/ids.ts';
import type { Keyring } from '../../platform/crypto/keyring.ts';
import { lockForTransaction } from '../../platform/db/advisory-lock.ts';
import type { EventBus } from '../../platform/db/event-bus.ts';
import type { NewEvent } from '../../platform/db/event-store.ts';
import type { CertificateRow } from '../../platform/db/schema.ts';
import { insertSettingIfAbsent, readSetting, writeSetting } from '../../platform/db/settings.ts';
import type { Transactor, Tx } from '../../platform/db/transact.ts';
import type { CaPolicyService } from './policy-service.ts';
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
/** An imported intermediate's chain above it, PEM; empty for muster's own root. */
const chainSetting = 'ca_chain';
const advisoryClass = 0x6361; // 'ca'

async function loadOrCreate(tx: Transactor, keyring: Keyring): Promise<{ material: CaMaterial; imported: boolean }> {
  return tx.run(async (t) => {
    await lockForTransaction(t, advisoryClass, 1);
    const sealed = await readSetting(t.db, keySetting);
    const certificatePem = await readSetting(t.db, certificateSetting);
    if (sealed && certificatePem) {
      // The chain setting is written by an import only (empty when the intermediate came without one).
      const chainPem = await readSetting(t.db, chainSetting);
      return { material: { keyPem: keyring.open(sealed, keySetting), certificatePem, chainPem }, imported: chainPem !== undefined };
    }
    const made = await createCa('muster CA');
    await insertSettingIfAbsent(t.db, keySetting, keyring.seal(made.keyPem, keySetting));
    await insertSettingIfAbsent(t.db, certificateSetting, made.certificatePem);
    await t.emit({ type: 'ca.created', actor: 'system', data: { subject: 'CN=muster CA' } });
    return { material: made, imported: false };
  });
}

/** What a device route answers a caller without a valid muster certificate. */
export const noDeviceCertificate = () =>
  new MusterError('unauthenticated', 'This needs a valid muster device certificate, presented over mutual TLS on the --tls-listen port');

/** The DER of a PEM certificate. */
const pemDer = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');

/** muster's certificate authority: issues device certificates, revokes them, and publishes the CRL. */
export class CaService {
  readonly #tx: Transactor;
  readonly #keyring: Keyring;
  #ca: CertificateAuthority;
  #imported: boolean;
  /** Counts loads, so that a reload that read the database before a newer import finished does not undo it. */
  #generation = 0;
  readonly #changed = new Set<() => void>();
  readonly #policy: CaPolicyService;

  private constructor(tx: Transactor, keyring: Keyring, ca: CertificateAuthority, imported: boolean, policy: CaPolicyService) {
    this.#tx = tx;
    this.#keyring = keyring;
    this.#ca = ca;
    this.#imported = imported;
    this.#policy = policy;
  }

  /**
   * `policy`: what every certificate is checked against before it is issued. `bus`: a CA imported on another
   * replica (its event arrives there) is loaded here too; `onReloadError` hears a reload that failed, and the CA in
   * use stays.
   */
  static async open(
    tx: Transactor,
    keyring: Keyring,
    policy: CaPolicyService,
    bus?: EventBus,
    onReloadError: (error: unknown) => void = () => {},
  ): Promise<CaService> {
    const { material, imported } = await loadOrCreate(tx, keyring);
    const ca = await CertificateAuthority.load(material);
    const service = new CaService(tx, keyring, ca, imported, policy);
    bus?.subscribe((event) => {
      if (event.type === 'ca.imported') service.#reload().catch(onReloadError);
    });
    return service;
  }

  async #reload(): Promise<void> {
    const generation = ++this.#generation;
    const { material, imported } = await loadOrCreate(this.#tx, this.#keyring);
    const ca = await CertificateAuthority.load(material);
    if (generation === this.#generation) this.#use(ca, imported);
  }

  #use(ca: CertificateAuthority, imported: boolean): void {
    this.#ca = ca;
    this.#imported = imported;
    for (const listener of this.#changed) listener();
  }

  /** Calls `listener` whenever another CA issues from now on (an import here, or one on another replica). */
  onChange(listener: () => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  get pem(): string {
    return this.#ca.pem;
  }

  /** The issuing CA's certificate and those above it: what `ca_chain` in an answer holds. */
  get chain(): string[] {
    return this.#ca.chainPems;
  }

  async info(): Promise<CaInfo> {
    const cert = this.#ca.certificate;
    return {
      subject: cert.subject,
      fingerprint_sha256: await this.#ca.fingerprint(),
      not_before: cert.notBefore.toISOString(),
      not_after: cert.notAfter.toISOString(),
      certificate: this.#ca.pem,
      chain: this.#ca.chainPems,
      imported: this.#imported,
    };
  }

  /**
   * Makes an operator's CA (an intermediate, with its chain) the one that issues from now on, checked whole first
   * (platform/crypto/ca.ts checkImport). Certificates issued before stay recorded and revocable; devices holding
   * them should renew. The key is sealed; the event names the CA, never the key.
   */
  async import(actor: string, input: { certificate: string; key: string; chain?: string }): Promise<CaInfo> {
    const material = await checkImport(input);
    const loaded = await CertificateAuthority.load(material);
    const previous = await this.#ca.fingerprint();
    const fingerprint = await loaded.fingerprint();
    await this.#tx.run(async (tx) => {
      await lockForTransaction(tx, advisoryClass, 1);
      await writeSetting(tx.db, keySetting, this.#keyring.seal(material.keyPem, keySetting));
      await writeSetting(tx.db, certificateSetting, material.certificatePem);
      await writeSetting(tx.db, chainSetting, material.chainPem ?? '');
      await tx.emit({
        type: 'ca.imported',
        actor,
        data: {
          subject: loaded.subject,
          fingerprint_sha256: fingerprint,
          previous_fingerprint_sha256: previous,
          chain: loaded.chain.map((c) => c.subject),
        },
      });
    }, 1);
    this.#generation++;
    this.#use(loaded, true);
    return this.info();
  }

  /**
   * A certificate signed now from the CSR, for the caller to record in its transaction with its event: only when the
   * CA policy allows it whole (ca_policy_violation otherwise). `db` reads the policy and the machine's pool
   * addresses: the caller's transaction, or the database outside one.
   */
  async sign(
    db: Pick<Tx, 'db'>,
    machineId: string,
    csrPem: string,
    subject: string | IssuePolicy,
    actor: string,
    source?: string,
  ): Promise<{ row: CertificateRow; event: NewEvent; certificate: Certificate }> {
    const asked = typeof subject === 'string' ? { commonName: subject, dnsNames: [subject], ipAddresses: [] } : subject;
    const checked = await this.#policy.checkIssue(db, machineId, { ...deviceUsages, ...asked });
    const issued = await this.#ca.issue(csrPem, checked, checked.days);
    const row: CertificateRow = {
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
    const event: NewEvent = {
      type: 'certificate.issued',
      machineId,
      actor,
      data: { serial: issued.serial, subject: issued.subject, not_after: row.not_after, ...(source ? { source } : {}) },
    };
    return { row, event, certificate: certificateFromRow(row) };
  }

  /** Issues a certificate inside the caller's transaction and records it (a refusal rolls the transaction back). */
  async issueInTx(
    tx: Tx,
    machineId: string,
    csrPem: string,
    subject: string | IssuePolicy,
    actor: string,
    source?: string,
  ): Promise<Certificate> {
    const signed = await this.sign(tx, machineId, csrPem, subject, actor, source);
    await insertCertificate(tx.db, signed.row);
    await tx.emit(signed.event);
    return signed.certificate;
  }

  /**
   * The certificate a client presented over mutual TLS (`serial` as TLS reports it, hex without leading zeros), when
   * it is one muster issued to a machine, not revoked, not expired. The whole certificate is compared, not only its
   * serial: the listener trusts the root above an imported intermediate, which may have signed others with any serial.
   */
  async deviceCertificate(peer: { serial: string; der: Buffer } | null): Promise<Certificate> {
    const row = peer ? await findCertificate(this.#tx.db, peer.serial.padStart(32, '0')) : undefined;
    if (!peer || !row?.machine_id || row.revoked_at || row.not_after <= now() || !pemDer(row.pem).equals(peer.der)) {
      throw noDeviceCertificate();
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
