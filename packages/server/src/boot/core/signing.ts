import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The part of a machine's boot an artifact URL belongs to: the registration image (discovered, enrolled) or
 * the install (ready, provisioning). A URL works only while the machine is still in the phase it was signed
 * in, so it dies when the machine moves on (provisioned, retired, back to configured).
 */
export type BootPhase = 'registration' | 'install';

export function bootPhase(state: string): BootPhase | null {
  if (state === 'discovered' || state === 'enrolled') return 'registration';
  if (state === 'ready' || state === 'provisioning') return 'install';
  return null;
}

export interface SignedArtifact {
  machineId: string;
  phase: string;
  /** Unix seconds after which the URL no longer works. */
  expires: number;
  signature: string;
}

export type Verdict = 'ok' | 'forged' | 'expired';

/**
 * Artifact URLs in a boot answer are signed for the machine they were rendered for, the phase of its boot and
 * a time limit, so that machines fetch only the artifacts their answer references, every fetch lands in the
 * right boot timeline, and a URL seen once is not a key for ever.
 */
export class ArtifactUrlSigner {
  readonly #key: string;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  constructor(key: string, ttlSeconds = 6 * 3600, now: () => number = Date.now) {
    this.#key = key;
    this.#ttlSeconds = ttlSeconds;
    this.#now = now;
  }

  #mac(machineId: string, phase: string, expires: number, sha256: string): Buffer {
    return createHmac('sha256', this.#key).update(`${machineId}:${phase}:${expires}:${sha256}`).digest().subarray(0, 16);
  }

  /** Path and query of the signed URL; `filename` is cosmetic (iPXE and kernels like a name). */
  path(machineId: string, phase: BootPhase, sha256: string, filename: string): string {
    const name = encodeURIComponent(filename.split('/').pop() || 'artifact');
    const expires = Math.floor(this.#now() / 1000) + this.#ttlSeconds;
    const signature = this.#mac(machineId, phase, expires, sha256).toString('base64url');
    return `/boot/artifacts/${sha256}/${name}?m=${machineId}&p=${phase}&e=${expires}&s=${signature}`;
  }

  verify(url: SignedArtifact, sha256: string): Verdict {
    const given = Buffer.from(url.signature, 'base64url');
    const expected = this.#mac(url.machineId, url.phase, url.expires, sha256);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'forged';
    return url.expires * 1000 < this.#now() ? 'expired' : 'ok';
  }
}
