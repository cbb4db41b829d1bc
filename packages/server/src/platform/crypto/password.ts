import { argon2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const argon2Async = promisify(argon2);

// OWASP's argon2id profile: 19 MiB, 2 passes, 1 lane.
const params = { memory: 19456, passes: 2, parallelism: 1, tagLength: 32 } as const;

const b64 = (buffer: Buffer) => buffer.toString('base64').replace(/=+$/, '');

/** Hashes a password with argon2id into a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash). */
export async function hashPassword(password: string): Promise<string> {
  const nonce = randomBytes(16);
  const tag = await argon2Async('argon2id', { message: password, nonce, ...params });
  return `$argon2id$v=19$m=${params.memory},t=${params.passes},p=${params.parallelism}$${b64(nonce)}$${b64(tag)}`;
}

export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(phc);
  if (!match) return false;
  const expected = Buffer.from(match[5], 'base64');
  const tag = await argon2Async('argon2id', {
    message: password,
    nonce: Buffer.from(match[4], 'base64'),
    memory: Number(match[1]),
    passes: Number(match[2]),
    parallelism: Number(match[3]),
    tagLength: expected.length,
  });
  return timingSafeEqual(tag, expected);
}

/** A hash to verify against when the user does not exist, so timing does not reveal usernames. */
export const decoyHash = `$argon2id$v=19$m=${params.memory},t=${params.passes},p=${params.parallelism}$${b64(Buffer.alloc(16))}$${b64(Buffer.alloc(32))}`;
