import { randomFillSync } from 'node:crypto';

export type IdPrefix = 'm' | 'u' | 'g' | 'f' | 'j' | 't' | 'b' | 's' | 'e';

// Crockford's base32 in lower case, as ULIDs use it.
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
let lastTime = -1;
const lastRandom = new Uint8Array(10);

function encode(value: number, length: number, out: string[]): void {
  for (let i = length - 1; i >= 0; i--) {
    out[i] = alphabet[value % 32];
    value = Math.floor(value / 32);
  }
}

/** Ten random bytes; within one millisecond the previous ones plus one, so ids stay ordered (monotonic ULID). */
function randomPart(time: number): Uint8Array {
  if (time === lastTime) {
    for (let i = 9; i >= 0 && ++lastRandom[i] === 256; i--) lastRandom[i] = 0;
    return lastRandom;
  }
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  lastRandom.set(pool.subarray(poolOffset, poolOffset + 10));
  poolOffset += 10;
  lastTime = time;
  return lastRandom;
}

/** A ULID: 48 bits of milliseconds and 80 bits of randomness, 26 base32 characters that sort by time. */
export function ulid(time = Date.now()): string {
  const chars: string[] = new Array(26);
  encode(time, 10, chars);
  const random = randomPart(time);
  // 80 bits as 16 five-bit groups, taken from two 40-bit halves that a double holds exactly.
  for (let half = 0; half < 2; half++) {
    let value = 0;
    for (let i = 0; i < 5; i++) value = value * 256 + random[half * 5 + i];
    const part: string[] = new Array(8);
    encode(value, 8, part);
    for (let i = 0; i < 8; i++) chars[10 + half * 8 + i] = part[i];
  }
  return chars.join('');
}

/** Opaque ids: a prefix naming the kind and a ULID, so ids sort by creation time. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}

export function now(): string {
  return new Date().toISOString();
}
