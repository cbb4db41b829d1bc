import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

// Secrets at rest (docs/secrets.md): each is sealed with AES-256-GCM under the master key. A sealed value reads
//   sealed:v1:<key id>:<iv>:<ciphertext>:<tag>        (base64url parts; the key id is 8 hex digits)
// and is bound to its name (the GCM additional data), so a sealed value copied under another name does not open.

const prefix = 'sealed:v1:';
const keyBytes = 32;
const ivBytes = 12;

/** A master key: 32 random bytes, base64url. */
export function newMasterKey(): string {
  return randomBytes(keyBytes).toString('base64url');
}

/** A key's id: the first 8 hex digits of a hash of it, written beside each value it seals; it reveals nothing of the key. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('muster master key\0').update(key).digest('hex').slice(0, 8);
}

export function isSealed(value: string): boolean {
  return value.startsWith(prefix);
}

/** The key id a sealed value was sealed with. */
export function sealedKeyId(value: string): string | null {
  return isSealed(value) ? (value.slice(prefix.length).split(':')[0] ?? null) : null;
}

export class KeyringError extends Error {}

/**
 * The master keys: the first seals, every one opens (the others are kept while a rotation re-seals). Parsed from
 * MUSTER_MASTER_KEY or the key file: keys separated by commas or new lines, each 32 bytes in base64, base64url or hex.
 */
export class Keyring {
  readonly #keys: { id: string; key: Buffer }[];

  constructor(keys: Buffer[]) {
    if (keys.length === 0) throw new KeyringError('no master key');
    this.#keys = keys.map((key) => ({ id: keyId(key), key }));
  }

  /** Parses keys; `origin` names where they came from in errors, which never quote a key. */
  static parse(text: string, origin: string): Keyring {
    const entries = text
      .split(/[\s,]+/)
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '' && !entry.startsWith('#'));
    if (entries.length === 0) throw new KeyringError(`${origin} holds no master key`);
    return new Keyring(
      entries.map((entry, n) => {
        const key = /^[0-9a-f]{64}$/i.test(entry) ? Buffer.from(entry, 'hex') : Buffer.from(entry, 'base64url');
        if (key.length !== keyBytes || !/^[A-Za-z0-9+/_=-]+$/.test(entry)) {
          throw new KeyringError(`${origin}: key ${n + 1} is not 32 bytes in base64 or hex (make one with: openssl rand -base64 32)`);
        }
        return key;
      }),
    );
  }

  /** The id of the key that seals. */
  get currentId(): string {
    return this.#keys[0].id;
  }

  get ids(): string[] {
    return this.#keys.map((k) => k.id);
  }

  seal(plaintext: string, name: string): string {
    const { id, key } = this.#keys[0];
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(name));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${prefix}${[id, iv, ciphertext, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join(':')}`;
  }

  /** Opens a sealed value; a KeyringError says which key it needs when the keyring lacks it, or that it was altered. */
  open(sealed: string, name: string): string {
    if (!isSealed(sealed)) throw new KeyringError(`${name} is not sealed`);
    const [id, iv, ciphertext, tag, extra] = sealed.slice(prefix.length).split(':');
    const entry = this.#keys.find((k) => k.id === id);
    if (!entry) {
      throw new KeyringError(
        `${name} was sealed with master key ${id}, which this server does not have (it has ${this.ids.join(', ')}); give it that key in MUSTER_MASTER_KEY or the key file`,
      );
    }
    try {
      if (extra !== undefined || tag === undefined) throw new Error('malformed');
      const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(name));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new KeyringError(`${name} does not open with master key ${id}: it was altered or belongs to another name`);
    }
  }

  /** The keys as the key file holds them, the sealing one first. */
  serialize(): string {
    return `${this.#keys.map((k) => k.key.toString('base64url')).join('\n')}\n`;
  }

  /** This keyring with `key` in front: it seals from now on, the others still open. */
  withCurrent(key: Buffer): Keyring {
    return new Keyring([key, ...this.#keys.map((k) => k.key).filter((k) => !k.equals(key))]);
  }

  /** Only the sealing key. */
  currentOnly(): Keyring {
    return new Keyring([this.#keys[0].key]);
  }
}
