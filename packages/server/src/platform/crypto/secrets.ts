import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const apiTokenPrefix = 'mst_';

export function newApiToken(): string {
  return apiTokenPrefix + randomBytes(32).toString('base64url');
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

export function randomCode(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
