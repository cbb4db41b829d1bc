import { createPublicKey, verify } from 'node:crypto';
import { type ClaimProof, type ClaimStatus, MusterError } from '@muster/contract';
import { checkedCsrKey } from '../../platform/crypto/ca.ts';

// Proof of possession on a claim's retry (docs/identity.md). Tokens are baked into every image and hardware ids are
// not secret, so a retry that is to receive a certificate, files or a secret must be signed by the key the device
// claimed with: the public key of its first CSR, kept with the claim. A retry without that proof learns its status.

/** How far the device's clock may be from the server's, either way. */
export const proofWindowMs = 5 * 60_000;

/** The bytes a device signs: its hardware id exactly as it sends it, and the time it signs at. */
export function proofMessage(hwid: string, time: string): Buffer {
  return Buffer.from(`muster-claim-v1\n${hwid}\n${time}`);
}

/** The key a claim's CSR carries (SubjectPublicKeyInfo, DER, base64), kept so that its retries can be checked. */
export function claimKey(csr: string | undefined | null): string | null {
  return csr ? checkedCsrKey(csr).toString('base64') : null;
}

/** True when `proof` is a signature over the message by the claim's key, made within the window. */
export function provesPossession(key: string | null, hwid: string, proof: ClaimProof | undefined, now = Date.now()): boolean {
  if (!key || !proof) return false;
  const signed = Date.parse(proof.time);
  if (!Number.isFinite(signed) || Math.abs(now - signed) > proofWindowMs) return false;
  try {
    const publicKey = createPublicKey({ key: Buffer.from(key, 'base64'), format: 'der', type: 'spki' });
    const signature = Buffer.from(proof.signature, proof.signature.includes('-') || proof.signature.includes('_') ? 'base64url' : 'base64');
    return verify('sha256', proofMessage(hwid, proof.time), publicKey, signature);
  } catch {
    return false;
  }
}

/** The status a retry learns without proof: approved or pending, and how to prove itself. */
export function claimStatus(status: ClaimStatus['status'], hasKey: boolean): ClaimStatus {
  return {
    status,
    proof_required: hasKey,
    detail: hasKey
      ? `This device's claim is ${status}. To receive its identity, send proof: a signature by the key of the claim's CSR over "muster-claim-v1\\n<hwid>\\n<time>" (docs/identity.md).`
      : `This device's claim is ${status}. It claimed without a CSR, so its identity was in the first answer only: nothing more is sent again.`,
    server_time: new Date().toISOString(),
  };
}

/**
 * A retired machine's claim answers this, with proof or without: never an identity whose certificate is revoked, and
 * nothing that names the machine to a caller who may hold only the image's token and a hardware id.
 */
export function retiredClaim(at: string | null): MusterError {
  return new MusterError(
    'machine_retired',
    `This device's machine was retired${at ? ` at ${at}` : ''}: its identity and certificate are no longer valid. Erase its credentials and claim again with a new one-time password or enrollment token.`,
  );
}

/**
 * A retry that sends a CSR of another key than the claim's (or a key where the claim had none) is not the device
 * that claimed: it is told so, so that a device whose hardware id someone claimed first learns it, instead of
 * reading "approved" forever.
 */
export function checkSameKey(kept: string | null, csr: string | undefined): void {
  if (csr === undefined || claimKey(csr) === kept) return;
  throw new MusterError(
    'conflict',
    'This hardware id was claimed with another key: if this device did not claim it before, an operator must retire that machine',
  );
}
