import { monotonicFactory } from 'ulid';

const nextUlid = monotonicFactory();

export type IdPrefix = 'm' | 'u' | 'g' | 'f' | 'j' | 't';

/** Opaque ids: a prefix naming the kind and a ULID, so ids sort by creation time. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${nextUlid().toLowerCase()}`;
}

export function now(): string {
  return new Date().toISOString();
}
