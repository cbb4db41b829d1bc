import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { MusterError } from '@muster/contract';
import type { DatabaseTarget } from './platform/db/connect.ts';

export interface Config {
  listen: { host: string; port: number };
  /** TFTP front door; null when off. `fallback` is the port taken when the default 69 is not permitted. */
  tftp: { host: string; port: number; fallback: number | null; singlePort: boolean } | null;
  /** How machines reach the HTTP server (artifact URLs in Pi templates); derived from listen when unset. */
  publicUrl: string;
  dataDir: string;
  /** Where artifact blobs live (docs/artifacts.md); replicas share it. */
  artifactDir: string;
  /** The largest artifact an upload may send. */
  artifactMaxBytes: number;
  database: DatabaseTarget;
  enableAuth: boolean;
  jwtSecret: string | null;
  jwtExpirySeconds: number;
  logLevel: string;
  builder: { command: string | null; timeoutSeconds: number; maxAttempts: number };
  enrollRatePerMinute: number;
  loginRatePerMinute: number;
  /** Peers (addresses or CIDRs) whose X-Forwarded-For is believed; empty trusts nobody. */
  trustProxy: string[];
  /** Per-source token bucket on the anonymous boot doors (/boot.ipxe, /ipxe, /nixos, /boot/artifacts). */
  bootRate: { perMinute: number; burst: number };
  /** New machines all anonymous doors together may create per minute; 0 is unlimited. */
  discoveryPerMinute: number;
  /** The largest `hardware` an enrollment may report, serialised. */
  factsMaxBytes: number;
  /** How long boot requests and device events are kept, in seconds; 0 keeps them for ever. */
  retention: { bootRequestsSeconds: number; eventsSeconds: number };
}

/** Options given on the command line; undefined means "not given". */
export interface ConfigFlags {
  listen?: string;
  tftpListen?: string;
  dataDir?: string;
  databaseUrl?: string;
  config?: string;
  enableAuth?: string;
  logLevel?: string;
  trustProxy?: string;
}

type Env = Record<string, string | undefined>;

function configError(detail: string): MusterError {
  return new MusterError('bad_request', detail);
}

export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) throw configError(`listen address "${value}" is not HOST:PORT (e.g. 127.0.0.1:8080 or :8080)`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses 24h, 90m, 3600s, 7d or a bare number of seconds (also Go's 1h30m). */
export function parseDuration(value: string): number {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw configError(`duration "${value}" is not like 24h, 30m or 7d`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * durationUnits[p[2]], 0);
}

const byteUnits: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses a byte count: 1048576, 512M, 16G (binary units; a trailing B or iB is allowed). */
export function parseBytes(name: string, value: string): number {
  const match = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = match ? Number(match[1]) * byteUnits[match[2].toLowerCase()] : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw configError(`${name}="${value}" is not a size like 16G, 512M or 1048576`);
  return bytes;
}

/** A whole number from 0 up to max. */
function parseCount(name: string, value: string | number, max = 1_000_000_000): number {
  const count = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(count) || count < 0 || count > max)
    throw configError(`${name}="${value}" is not a whole number from 0 to ${max}`);
  return count;
}

/** A retention period (30d, 12h) or off/0 for keeping rows for ever. */
function parseRetention(name: string, value: string): number {
  if (/^\s*(off|never|0)\s*$/i.test(value)) return 0;
  try {
    return parseDuration(value);
  } catch {
    throw configError(`${name}="${value}" is not a duration like 30d or 12h, or off`);
  }
}

const proxyNames = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Trusted proxies: addresses, CIDRs, or proxy-addr's names (loopback, linklocal, uniquelocal), separated by
 * commas or spaces. A bad entry is an error, never silently skipped.
 */
export function parseTrustProxy(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const entries = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/[\s,]+/)).filter(Boolean);
  for (const entry of entries) {
    if (proxyNames.has(entry)) continue;
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
    if (!family || !prefixOk || extra !== undefined) {
      throw configError(`trust_proxy entry "${entry}" is not an address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8, ::1, loopback)`);
    }
  }
  return entries;
}

function parseBool(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw configError(`${name}="${value}" is not true or false`);
}

/** Turns a libpq key=value DSN (the seed's DB_DSN) into a URL; URLs pass through. */
export function dsnToUrl(dsn: string): string {
  if (/^postgres(ql)?:\/\//.test(dsn)) return dsn;
  const fields = Object.fromEntries([...dsn.matchAll(/(\w+)=('(?:[^'\\]|\\.)*'|\S+)/g)].map((m) => [m[1], m[2].replace(/^'|'$/g, '')]));
  const url = new URL('postgres://localhost/');
  if (fields.host) url.hostname = fields.host;
  if (fields.port) url.port = fields.port;
  if (fields.user) url.username = encodeURIComponent(fields.user);
  if (fields.password) url.password = encodeURIComponent(fields.password);
  url.pathname = `/${fields.dbname ?? ''}`;
  if (fields.sslmode) url.searchParams.set('sslmode', fields.sslmode);
  return url.toString();
}

function databaseTarget(env: Env, flags: ConfigFlags, file: FileConfig, dataDir: string): DatabaseTarget {
  const url = flags.databaseUrl ?? env.DATABASE_URL ?? env.MUSTER_DATABASE_URL;
  if (url) return url.startsWith('postgres') ? { dialect: 'postgres', url } : sqliteTarget(url, dataDir);
  const driver = env.DB_DRIVER;
  if (driver) {
    if (driver === 'postgres' || driver === 'pgx') return { dialect: 'postgres', url: dsnToUrl(env.DB_DSN ?? '') };
    if (driver === 'sqlite3' || driver === 'sqlite') return sqliteTarget(env.DB_DSN ?? '', dataDir);
    throw configError(`DB_DRIVER="${driver}" is not sqlite3 or postgres`);
  }
  if (file.database_url) return databaseTarget({}, { databaseUrl: file.database_url }, {}, dataDir);
  return { dialect: 'sqlite', path: join(dataDir, 'muster.db') };
}

function sqliteTarget(value: string, dataDir: string): DatabaseTarget {
  const path = value.replace(/^(sqlite3?|file):(\/\/)?/, '').replace(/\?.*$/, '');
  if (!path) return { dialect: 'sqlite', path: join(dataDir, 'muster.db') };
  return { dialect: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
}

interface FileConfig {
  listen?: string;
  tftp_listen?: string;
  tftp_single_port?: boolean;
  public_url?: string;
  data_dir?: string;
  artifact_dir?: string;
  artifact_max_bytes?: number | string;
  database_url?: string;
  enable_auth?: boolean;
  jwt_expiry?: string;
  log_level?: string;
  builder_command?: string;
  builder_timeout?: string;
  builder_attempts?: number;
  trust_proxy?: string | string[];
  boot_rate?: number;
  boot_burst?: number;
  discovery_rate?: number;
  facts_max_bytes?: number | string;
  retention_boot_requests?: string;
  retention_events?: string;
}

function readFileConfig(path: string | undefined): FileConfig {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as FileConfig;
  } catch (error) {
    throw configError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
}

/** Flags > environment > config file > defaults (DESIGN.md, "Config"). */
export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): Config {
  const file = readFileConfig(flags.config ?? env.MUSTER_CONFIG);
  const dataDir = resolve(flags.dataDir ?? env.MUSTER_DATA_DIR ?? file.data_dir ?? 'muster-data');
  const enableAuth = flags.enableAuth ?? env.ENABLE_AUTH ?? env.MUSTER_ENABLE_AUTH;
  const builderAttempts = Number(env.MUSTER_BUILDER_ATTEMPTS ?? file.builder_attempts ?? 1);
  if (!Number.isInteger(builderAttempts) || builderAttempts < 1 || builderAttempts > 20) {
    throw configError('MUSTER_BUILDER_ATTEMPTS must be an integer from 1 to 20');
  }
  const listen = parseListen(flags.listen ?? env.LISTEN_ADDR ?? env.MUSTER_LISTEN ?? file.listen ?? ':8080');
  return {
    listen,
    tftp: tftpConfig(flags.tftpListen ?? env.MUSTER_TFTP_LISTEN ?? file.tftp_listen, env.MUSTER_TFTP_SINGLE_PORT ?? file.tftp_single_port),
    publicUrl: publicUrl(env.MUSTER_PUBLIC_URL ?? file.public_url, listen),
    dataDir,
    artifactDir: resolve(env.MUSTER_ARTIFACT_DIR ?? file.artifact_dir ?? join(dataDir, 'artifacts')),
    artifactMaxBytes: parseBytes('MUSTER_ARTIFACT_MAX_BYTES', String(env.MUSTER_ARTIFACT_MAX_BYTES ?? file.artifact_max_bytes ?? '16G')),
    database: databaseTarget(env, flags, file, dataDir),
    enableAuth: enableAuth === undefined ? (file.enable_auth ?? true) : parseBool('ENABLE_AUTH', enableAuth),
    jwtSecret: env.JWT_SECRET || env.MUSTER_JWT_SECRET || null,
    jwtExpirySeconds: parseDuration(env.JWT_EXPIRY ?? env.MUSTER_JWT_EXPIRY ?? file.jwt_expiry ?? '24h'),
    logLevel: flags.logLevel ?? env.MUSTER_LOG_LEVEL ?? file.log_level ?? 'info',
    builder: {
      command: env.MUSTER_BUILDER_COMMAND ?? file.builder_command ?? null,
      timeoutSeconds: parseDuration(env.MUSTER_BUILDER_TIMEOUT ?? file.builder_timeout ?? '30m'),
      maxAttempts: builderAttempts,
    },
    enrollRatePerMinute: parseCount('MUSTER_ENROLL_RATE', env.MUSTER_ENROLL_RATE ?? 600),
    loginRatePerMinute: Number(env.MUSTER_LOGIN_RATE ?? 10),
    trustProxy: parseTrustProxy(flags.trustProxy ?? env.MUSTER_TRUST_PROXY ?? file.trust_proxy),
    bootRate: {
      perMinute: parseCount('MUSTER_BOOT_RATE', env.MUSTER_BOOT_RATE ?? file.boot_rate ?? 600),
      burst: parseCount('MUSTER_BOOT_BURST', env.MUSTER_BOOT_BURST ?? file.boot_burst ?? 400),
    },
    discoveryPerMinute: parseCount('MUSTER_DISCOVERY_RATE', env.MUSTER_DISCOVERY_RATE ?? file.discovery_rate ?? 1000),
    factsMaxBytes: parseBytes('MUSTER_FACTS_MAX_BYTES', String(env.MUSTER_FACTS_MAX_BYTES ?? file.facts_max_bytes ?? '16K')),
    retention: {
      bootRequestsSeconds: parseRetention(
        'MUSTER_RETENTION_BOOT_REQUESTS',
        env.MUSTER_RETENTION_BOOT_REQUESTS ?? file.retention_boot_requests ?? '30d',
      ),
      eventsSeconds: parseRetention('MUSTER_RETENTION_EVENTS', env.MUSTER_RETENTION_EVENTS ?? file.retention_events ?? '90d'),
    },
  };
}

/** `off` turns TFTP off; no value means port 69 on every address, or 6969 where 69 is not permitted. */
function tftpConfig(value: string | undefined, singlePort: string | boolean | undefined): Config['tftp'] {
  const single =
    typeof singlePort === 'boolean' ? singlePort : singlePort === undefined ? false : parseBool('MUSTER_TFTP_SINGLE_PORT', singlePort);
  if (value === undefined) return { host: '0.0.0.0', port: 69, fallback: 6969, singlePort: single };
  if (/^(off|false|no|0)$/i.test(value.trim())) return null;
  return { ...parseListen(value), fallback: null, singlePort: single };
}

function publicUrl(value: string | undefined, listen: { host: string; port: number }): string {
  if (value) {
    if (!/^https?:\/\/[^/]+/.test(value)) throw configError(`MUSTER_PUBLIC_URL="${value}" is not an http(s) URL`);
    return value.replace(/\/+$/, '');
  }
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? hostname() : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '::1']);

export function isLoopbackOnly(host: string): boolean {
  return loopbackHosts.has(host) || host.startsWith('127.');
}
