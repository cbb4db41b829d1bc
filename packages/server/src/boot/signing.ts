import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Artifact URLs in a boot answer are signed for the machine they were rendered for, so that machines fetch
 * only the artifacts their answer references and every fetch lands in the right boot timeline.
 */
export class ArtifactUrlSigner {
  readonly #key: string;

  constructor(key: string) {
    this.#key = key;
  }

  #mac(machineId: string, sha256: string): Buffer {
    return createHmac('sha256', this.#key).update(`${machineId}:${sha256}`).digest().subarray(0, 16);
  }

  /** Path and query of the signed URL; `filename` is cosmetic (iPXE and kernels like a name). */
  path(machineId: string, sha256: string, filename: string): string {
    const name = encodeURIComponent(filename.split('/').pop() || 'artifact');
    return `/boot/artifacts/${sha256}/${name}?m=${machineId}&s=${this.#mac(machineId, sha256).toString('base64url')}`;
  }

  verify(machineId: string, sha256: string, signature: string): boolean {
    const given = Buffer.from(signature, 'base64url');
    const expected = this.#mac(machineId, sha256);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
