import { MusterError } from '@muster/contract';

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses 24h, 90m, 3600s, 7d or a bare number of seconds (also Go's 1h30m). */
export function parseDuration(value: string, name = 'duration'): number {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new MusterError('bad_request', `${name}="${value}" is not a duration like 24h, 30m or 7d`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * durationUnits[p[2]], 0);
}
