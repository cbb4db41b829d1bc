import 'reflect-metadata';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  webcrypto,
} from 'node:crypto';
import { isIPv4 } from 'node:net';
import { MusterError } from '@muster/contract';
import * as x509 from '@peculiar/x509';
import { bitString, children, encode, integer, octetString, oid, oidText, readTlv, sequence, time } from './der.ts';

// muster's certificate authority (docs/identity.md): an ECDSA P-256 key and a self-signed certificate, made once.
// Device certificates are issued from device-made CSRs; only the CSR's public key is taken, after its signature
// is checked. The subject, names, validity and usages come from muster.

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const signing = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const day = 86_400_000;
/** The largest CSR accepted, PEM: a real one is under 2 KiB. */
export const maxCsrBytes = 16_384;

export interface CaMaterial {
  certificatePem: string;
  /** PKCS#8 PEM: sealed with the master key before it is stored. */
  keyPem: string;
  /** For an imported intermediate: the certificates above it, the next issuer first (PEM, concatenated). */
  chainPem?: string;
}

/** How a CA key signs: the AlgorithmIdentifier written into certificates, the hash, and WebCrypto's name for CRLs. */
interface Signer {
  algorithm: Buffer;
  hash: 'sha256' | 'sha384';
  web: (webcrypto.EcKeyImportParams & webcrypto.EcdsaParams) | webcrypto.RsaHashedImportParams;
}

/** The signer for a CA key: ECDSA on P-256 or P-384, or RSA of 2048 bits or more; null for anything else. */
function signerFor(key: KeyObject): Signer | null {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1')
    return {
      algorithm: sequence(oid('1.2.840.10045.4.3.2')),
      hash: 'sha256',
      web: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
    };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1')
    return {
      algorithm: sequence(oid('1.2.840.10045.4.3.3')),
      hash: 'sha384',
      web: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
    };
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048)
    return {
      algorithm: sequence(oid('1.2.840.113549.1.1.11'), encode(0x05)),
      hash: 'sha256',
      web: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    };
  return null;
}

/** The PEM blocks of one label in a text, in order. */
function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`-----BEGIN ${label}-----[A-Za-z0-9+/=\\s]+-----END ${label}-----`, 'g'))].map((m) => `${m[0]}\n`);
}

type ImportErrors = { path: string; message: string }[];

/** Whether a certificate may sign others: CA in its basic constraints, keyCertSign in its key usage. */
function caProblems(cert: x509.X509Certificate, path: string, errors: ImportErrors): void {
  if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca)
    errors.push({ path, message: `${cert.subject} is not a CA (basicConstraints CA:TRUE)` });
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (!usage || !(usage.usages & x509.KeyUsageFlags.keyCertSign))
    errors.push({ path, message: `${cert.subject} may not sign certificates (keyCertSign)` });
  const now = Date.now();
  if (cert.notBefore.getTime() > now || cert.notAfter.getTime() < now)
    errors.push({
      path,
      message: `${cert.subject} is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now`,
    });
}

/**
 * An intermediate CA an operator imports (docs/identity.md), checked whole before anything is stored: a CA
 * certificate valid now that may sign, a key of a kind muster signs with that belongs to it, and a chain in which
 * each certificate signed the one before. Returns the material to store (the key as PKCS#8).
 */
export async function checkImport(input: { certificate: string; key: string; chain?: string }): Promise<CaMaterial> {
  const errors: ImportErrors = [];
  const fail = () => new MusterError('validation_failed', `The CA is not imported: ${errors.map((e) => e.message).join('; ')}`, { errors });
  const blocks = pemBlocks(input.certificate, 'CERTIFICATE');
  if (blocks.length !== 1) {
    errors.push({ path: '/certificate', message: 'give exactly one PEM certificate (the chain goes in chain)' });
    throw fail();
  }
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(blocks[0]);
  } catch {
    errors.push({ path: '/certificate', message: 'not a readable X.509 certificate' });
    throw fail();
  }
  caProblems(certificate, '/certificate', errors);
  let key: KeyObject | null = null;
  try {
    key = createPrivateKey(input.key);
  } catch {
    errors.push({ path: '/key', message: 'not a readable private key (PEM: PKCS#8, SEC1 or PKCS#1)' });
  }
  if (key && !signerFor(key)) errors.push({ path: '/key', message: 'the key must be ECDSA P-256 or P-384, or RSA of 2048 bits or more' });
  if (key) {
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!spki.equals(Buffer.from(certificate.publicKey.rawData)))
      errors.push({ path: '/key', message: 'the key does not belong to the certificate' });
  }
  const chain: x509.X509Certificate[] = [];
  for (const [i, block] of pemBlocks(input.chain ?? '', 'CERTIFICATE').entries()) {
    try {
      chain.push(new x509.X509Certificate(block));
    } catch {
      errors.push({ path: `/chain/${i}`, message: 'not a readable X.509 certificate' });
    }
  }
  if (input.chain && chain.length === 0 && errors.length === 0) errors.push({ path: '/chain', message: 'no PEM certificate in it' });
  for (const [i, cert] of chain.entries()) caProblems(cert, `/chain/${i}`, errors);
  const path = [certificate, ...chain];
  for (let i = 0; i + 1 < path.length; i++) {
    const [below, above] = [path[i], path[i + 1]];
    const signed = await below.verify({ publicKey: above.publicKey, signatureOnly: true }).catch(() => false);
    if (!signed || below.issuer !== above.subject)
      errors.push({ path: `/chain/${i}`, message: `${above.subject} did not sign ${below.subject} (its issuer is ${below.issuer})` });
    // RFC 5280 4.2.1.9: a CA's path length counts the CA certificates below it, here the intermediate and the chain before it.
    const pathLength = above.getExtension(x509.BasicConstraintsExtension)?.pathLength;
    if (pathLength !== undefined && pathLength < i + 1)
      errors.push({ path: `/chain/${i}`, message: `${above.subject} allows ${pathLength} CA certificate(s) below it, not ${i + 1}` });
  }
  if (errors.length || !key) throw fail();
  return {
    certificatePem: certificate.toString('pem'),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ...(chain.length ? { chainPem: chain.map((c) => c.toString('pem')).join('\n') } : {}),
  };
}

export interface Issued {
  /** Hex, lower case. */
  serial: string;
  pem: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export interface Revoked {
  serial: string;
  revokedAt: Date;
}

function pemBody(pem: string, label: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!match) throw new MusterError('bad_request', `not a PEM ${label}`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}

function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)?.join('\n')}\n-----END ${label}-----\n`;
}

/** A positive serial of 128 random bits, hex (RFC 5280: at most 20 octets, unpredictable). */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return bytes.toString('hex');
}

/** Makes a new CA: an ECDSA P-256 key and a self-signed certificate valid for ten years. */
export async function createCa(commonName: string): Promise<CaMaterial> {
  const keys = (await webcrypto.subtle.generateKey(signing, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [commonName] }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + 3650 * day),
    signingAlgorithm: signing,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certificatePem: certificate.toString('pem'), keyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

const signatureHashes: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
};

/**
 * A device's CSR, checked: PEM PKCS#10, an EC key on P-256 or P-384 or RSA of 2048 bits or more, and a signature
 * that verifies with that key. Only its public key (SubjectPublicKeyInfo, DER) is returned: nothing else is used.
 */
export function checkedCsrKey(pem: string): Buffer {
  const known = checkedCsrs.get(pem);
  if (known) return known;
  const key = checkCsrKey(pem);
  // A claim checks its CSR when it keeps the device's key and again when it signs: the signature is verified once.
  if (checkedCsrs.size >= 256) checkedCsrs.delete(checkedCsrs.keys().next().value as string);
  checkedCsrs.set(pem, key);
  return key;
}

const checkedCsrs = new Map<string, Buffer>();

function checkCsrKey(pem: string): Buffer {
  if (pem.length > maxCsrBytes) throw new MusterError('bad_request', `the CSR is larger than ${maxCsrBytes} bytes`);
  let info: Buffer;
  let spki: Buffer;
  let hash: string | undefined;
  let signature: Buffer;
  let key: KeyObject;
  try {
    const [infoTlv, algorithm, signatureBits] = children(readTlv(pemBody(pem, 'CERTIFICATE REQUEST')));
    info = infoTlv.raw;
    spki = children(infoTlv)[2].raw;
    hash = signatureHashes[oidText(children(algorithm)[0].content)];
    signature = signatureBits.content.subarray(1);
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new MusterError('bad_request', 'the CSR is not a PEM PKCS#10 certificate request');
  }
  const details = key.asymmetricKeyDetails ?? {};
  const ec = key.asymmetricKeyType === 'ec' && (details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1');
  const bits = details.modulusLength ?? 0;
  // At most 8192 bits: a retry's proof (a signature by this key) must fit its field, and verifying costs grow with size.
  const rsa = key.asymmetricKeyType === 'rsa' && bits >= 2048 && bits <= 8192;
  if (!ec && !rsa) throw new MusterError('bad_request', 'the CSR key must be ECDSA P-256 or P-384, or RSA of 2048 to 8192 bits');
  if (!hash)
    throw new MusterError('bad_request', 'the CSR is signed with an algorithm muster does not take (ECDSA or RSA with SHA-256 or SHA-384)');
  let valid = false;
  try {
    valid = verify(hash, info, key, signature);
  } catch {}
  if (!valid) throw new MusterError('bad_request', 'the CSR signature does not verify');
  return spki;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), octetString(value));
}

/** The key identifier of a SubjectPublicKeyInfo: SHA-1 of its key bits (RFC 5280 4.2.1.2, method 1). */
/** An IPv4 or IPv6 address as the 4 or 16 bytes of an iPAddress SAN. */
function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail = ''] = ip.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = ip.includes('::') ? [...groups(head), ...Array(missing).fill('0'), ...groups(tail)] : groups(head);
  return Buffer.from(all.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]));
}

function keyIdentifier(spki: Buffer): Buffer {
  const bits = children(readTlv(spki))[1].content.subarray(1);
  return createHash('sha1').update(bits).digest();
}

/** What a certificate says beyond its key: from a profile's certificate policy (docs/profiles.md), else the host name. */
export interface IssuePolicy {
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  /** Validity in days; the server's default when not given (never past the CA's own). */
  days?: number;
  keyUsages?: (keyof typeof keyUsageBit)[];
  extendedKeyUsages?: (keyof typeof extendedKeyUsageOids)[];
}

// RFC 5280 4.2.1.3: bit 0 digitalSignature, 1 nonRepudiation, 2 keyEncipherment, 4 keyAgreement.
const keyUsageBit = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, keyAgreement: 4 } as const;
const extendedKeyUsageOids = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const;
/** What a device certificate gets when its profile says nothing of usages. */
export const deviceUsages: Required<Pick<IssuePolicy, 'keyUsages' | 'extendedKeyUsages'>> = {
  keyUsages: ['digitalSignature', 'keyEncipherment'],
  extendedKeyUsages: ['clientAuth'],
};

/** The KeyUsage BIT STRING: the named bits set, trailing zero bits counted as unused (DER). */
function keyUsageBits(usages: (keyof typeof keyUsageBit)[]): Buffer {
  let byte = 0;
  for (const usage of usages) byte |= 0x80 >> keyUsageBit[usage];
  let unused = 0;
  while (unused < 7 && !(byte & (1 << unused))) unused++;
  return bitString(Buffer.from([byte]), unused);
}

/** The CA: issues device certificates and CRLs. */
export class CertificateAuthority {
  readonly certificate: x509.X509Certificate;
  /** The certificates above this CA, the next issuer first; empty for muster's own root. */
  readonly chain: x509.X509Certificate[];
  readonly #key: webcrypto.CryptoKey;
  readonly #signingKey: KeyObject;
  readonly #signer: Signer;
  /** The CA certificate's subject (DER), every issued certificate's issuer. */
  readonly #issuer: Buffer;
  readonly #authorityKeyId: Buffer;

  private constructor(
    certificate: x509.X509Certificate,
    chain: x509.X509Certificate[],
    key: webcrypto.CryptoKey,
    signingKey: KeyObject,
    signer: Signer,
  ) {
    this.certificate = certificate;
    this.chain = chain;
    this.#key = key;
    this.#signingKey = signingKey;
    this.#signer = signer;
    const tbs = children(children(readTlv(Buffer.from(certificate.rawData)))[0]);
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, …
    this.#issuer = tbs[5].raw;
    this.#authorityKeyId = keyIdentifier(tbs[6].raw);
  }

  static async load(material: CaMaterial): Promise<CertificateAuthority> {
    const certificate = new x509.X509Certificate(material.certificatePem);
    const chain = pemBlocks(material.chainPem ?? '', 'CERTIFICATE').map((pem) => new x509.X509Certificate(pem));
    const signingKey = createPrivateKey(material.keyPem);
    const signer = signerFor(signingKey);
    if (!signer) throw new MusterError('bad_request', 'the CA key is of a kind muster does not sign with');
    const key = await webcrypto.subtle.importKey('pkcs8', pemBody(material.keyPem, 'PRIVATE KEY'), signer.web, false, ['sign']);
    return new CertificateAuthority(certificate, chain, key, signingKey, signer);
  }

  /** PEM ending in a newline, so that certificates written one after another stay readable. */
  get pem(): string {
    return `${this.certificate.toString('pem')}\n`;
  }

  /** This CA's certificate and those above it, PEM, the issuer of device certificates first. */
  get chainPems(): string[] {
    return [this.pem, ...this.chain.map((c) => `${c.toString('pem')}\n`)];
  }

  get subject(): string {
    return this.certificate.subject;
  }

  /** The SHA-256 fingerprint of the CA certificate, hex with colons, as `openssl x509 -fingerprint -sha256` prints it. */
  async fingerprint(): Promise<string> {
    const digest = Buffer.from(await this.certificate.getThumbprint('SHA-256'));
    return [...digest].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  }

  /**
   * A client certificate for `commonName` (also its DNS name) from a device's CSR, valid `days`. Nothing of the CSR
   * but its public key is used. Written as DER here and signed with node:crypto: a claim's certificate costs a
   * fraction of a millisecond (bench/claims.ts).
   */
  async issue(csrPem: string, subject: string | IssuePolicy, days: number): Promise<Issued> {
    const policy = typeof subject === 'string' ? { commonName: subject, dnsNames: [subject], ipAddresses: [] } : subject;
    return this.#certificate(checkedCsrKey(csrPem), {
      ...deviceUsages,
      ...policy,
      days: policy.days ?? days,
    });
  }

  /**
   * A TLS server certificate for muster's own HTTPS listener, with a new key made here: names and addresses as
   * SANs, serverAuth. Made at each start and kept in memory only.
   */
  serverCertificate(names: { dnsNames: string[]; ipAddresses: string[] }, days = 30): { certificatePem: string; keyPem: string } {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const issued = this.#certificate(spki, {
      commonName: names.dnsNames[0] ?? 'muster',
      ...names,
      keyUsages: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsages: ['serverAuth'],
      days,
    });
    return { certificatePem: issued.pem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  #certificate(spki: Buffer, options: Required<Omit<IssuePolicy, 'days'>> & { days: number }): Issued {
    const notBefore = new Date(Math.floor((Date.now() - 5 * 60_000) / 1000) * 1000);
    const notAfter = new Date(Math.min(notBefore.getTime() + options.days * day, this.certificate.notAfter.getTime()));
    const serial = newSerial();
    const name = sequence(encode(0x31, sequence(oid('2.5.4.3'), encode(0x0c, Buffer.from(options.commonName, 'utf8')))));
    const altNames = [
      ...options.dnsNames.map((dns) => encode(0x82, Buffer.from(dns, 'ascii'))),
      ...options.ipAddresses.map((ip) => encode(0x87, ipBytes(ip))),
    ];
    const extensions = sequence(
      extension('2.5.29.19', true, sequence()),
      extension('2.5.29.15', true, keyUsageBits(options.keyUsages)),
      extension('2.5.29.37', false, sequence(...options.extendedKeyUsages.map((usage) => oid(extendedKeyUsageOids[usage])))),
      extension('2.5.29.17', false, sequence(...altNames)),
      extension('2.5.29.14', false, octetString(keyIdentifier(spki))),
      extension('2.5.29.35', false, sequence(encode(0x80, this.#authorityKeyId))),
    );
    const tbs = sequence(
      encode(0xa0, integer(Buffer.from([2]))),
      integer(Buffer.from(serial, 'hex')),
      this.#signer.algorithm,
      this.#issuer,
      sequence(time(notBefore), time(notAfter)),
      name,
      spki,
      encode(0xa3, extensions),
    );
    const der = sequence(tbs, this.#signer.algorithm, bitString(sign(this.#signer.hash, tbs, this.#signingKey)));
    return { serial, pem: toPem(der, 'CERTIFICATE'), subject: `CN=${options.commonName}`, notBefore, notAfter };
  }

  /** A CRL of these revocations, valid for `hours`, numbered `number` (PEM, "X509 CRL" as OpenSSL reads it). */
  async crl(revoked: Revoked[], number: number, hours = 24): Promise<string> {
    const thisUpdate = new Date();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.certificate.subjectName,
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + hours * 3_600_000),
      entries: revoked.map((r) => ({
        serialNumber: r.serial,
        revocationDate: r.revokedAt,
        reason: x509.X509CrlReason.cessationOfOperation,
      })),
      signingAlgorithm: this.#signer.web,
      signingKey: this.#key,
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(this.certificate), crlNumber(number)],
    });
    return toPem(crl.rawData, 'X509 CRL');
  }
}

/** The CRL number extension (RFC 5280 5.2.3), DER INTEGER. */
function crlNumber(number: number): x509.Extension {
  let hex = Math.max(0, Math.floor(number)).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return new x509.Extension('2.5.29.20', false, Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]));
}
