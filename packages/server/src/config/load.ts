import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { MusterError } from '@muster/contract';
import Ajv from 'ajv';
import { type TSchema, Type } from 'typebox';
import { Keyring } from '../platform/crypto/keyring.ts';
import type { DatabaseTarget } from '../platform/db/connect.ts';
import { defaultLogFormat } from '../platform/log/logger.ts';
import { parseDuration } from '../platform/time/duration.ts';
import { type ConfigFlags, type LogFormat, logFormats, logLevels, type SettingKey, settings } from './settings.ts';

export type { ConfigFlags } from './settings.ts';
export { parseDuration };

export interface Config {
  listen: { host: string; port: number };
  /** TFTP front door; null when off. `fallback` is the port taken when the default 69 is not permitted. */
  tftp: TftpConfig | null;
  /** The HTTPS listener with client certificates (docs/identity.md); null when off. Files null: made by the CA. */
  tls: { host: string; port: number; certFile: string | null; keyFile: string | null } | null;
  /** How machines reach the HTTP server (artifact URLs in Pi templates); derived from listen when unset. */
  publicUrl: string;
  dataDir: string;
  /** Where artifact blobs live (docs/artifacts.md); replicas share it. */
  artifactDir: string;
  /** The largest artifact an upload may send. */
  artifactMaxBytes: number;
  /** Seconds a signed artifact URL in a boot answer works. */
  artifactUrlTtlSeconds: number;
  database: DatabaseTarget;
  /** PostgreSQL connections per server. */
  dbPoolSize: number;
  /** SQLite's synchronous setting: normal survives a crash of the process, full a loss of power too. */
  sqliteSync: 'normal' | 'full';
  enableAuth: boolean;
  jwtSecret: string | null;
  jwtExpirySeconds: number;
  /** Master keys from MUSTER_MASTER_KEY (comma-separated, the first seals), or null to use the key file. */
  masterKey: string | null;
  /** The master key file, made once when missing and MUSTER_MASTER_KEY is not set (docs/secrets.md). */
  masterKeyFile: string;
  logLevel: string;
  /** pretty on a terminal, json otherwise. */
  logFormat: LogFormat;
  builder: { command: string | null; timeoutSeconds: number; maxAttempts: number };
  enrollRatePerMinute: number;
  loginRatePerMinute: number;
  /** Peers (addresses or CIDRs) whose X-Forwarded-For is believed; empty trusts nobody. */
  trustProxy: string[];
  /** Per-source token bucket on the anonymous boot doors (/boot.ipxe, /ipxe, /nixos, /boot/artifacts). */
  bootRate: { perMinute: number; burst: number };
  /** New machines all anonymous doors together may create per minute; 0 is unlimited. */
  discoveryPerMinute: number;
  /** The render threads (platform/templates): how many, the longest render, renders that may wait for one. */
  render: { threads: number; timeoutMs: number; maxQueued: number };
  /** Answers with rendered templates (iPXE, Pi files over TFTP) per source: worked on at once, and waiting their turn. */
  bootRenders: { running: number; waiting: number };
  /** The largest `hardware` an enrollment may report, serialised. */
  factsMaxBytes: number;
  /** How long boot requests and device events are kept, in seconds; 0 keeps them for ever. */
  retention: { bootRequestsSeconds: number; eventsSeconds: number };
  /** Wrong claims a source may make a minute before it must wait; valid claims are not counted. */
  claimFailuresPerMinute: number;
  /** The tunnel ports fleet slots take (docs/identity.md), unique across fleets. */
  tunnelPorts: { first: number; last: number };
  /** How long a device certificate is valid, in seconds. */
  certificateValiditySeconds: number;
}

export interface TftpConfig {
  host: string;
  port: number;
  fallback: number | null;
  singlePort: boolean;
  /** Transfer threads; 0 runs every transfer on the main thread. */
  workers: number;
  /** New requests per client address: `burst` at once, then `perSecond`; null for no limit. */
  requestRate: { perSecond: number; burst: number } | null;
  maxPerClient: number;
  maxTransfers: number;
  /** Seconds a client waits for a whole file (docs/tftp.md, Storms); null: no limit, serve evenly. */
  fileLimitSeconds: number | null;
}

type Env = Record<string, string | undefined>;

function configError(detail: string): MusterError {
  return new MusterError('bad_request', detail);
}

/** What a config file may hold: the settings above and nothing else. */
export const ConfigFile = Type.Object(
  Object.fromEntries(Object.entries(settings).map(([key, setting]) => [key, Type.Optional(setting.type)])) as {
    [K in SettingKey]: ReturnType<typeof Type.Optional<(typeof settings)[K]['type']>>;
  },
  { additionalProperties: false },
);
type FileConfig = Partial<Record<SettingKey, string | number | boolean | string[]>>;

let fileValidator: ReturnType<Ajv.default['compile']> | null = null;
function fileCheck() {
  fileValidator ??= new Ajv.default({ allErrors: true, strict: false }).compile(ConfigFile as object);
  return fileValidator;
}

/** A config file's value, refused with the key named when it is not JSON or holds a key or type it should not. */
function readFileConfig(path: string | undefined): FileConfig {
  if (!path) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw configError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw configError(`config file ${path} is not a JSON object`);
  const check = fileCheck();
  if (!check(parsed)) {
    const unknown = Object.keys(parsed).find((key) => !Object.hasOwn(settings, key));
    if (unknown) throw configError(`config file ${path}: unknown key "${unknown}" (known: ${Object.keys(settings).join(', ')})`);
    const error = check.errors?.[0];
    const key = error?.instancePath.split('/')[1] ?? '';
    const value = JSON.stringify((parsed as Record<string, unknown>)[key]);
    throw configError(`config file ${path}: "${key}" is ${value}, which is not ${describeType(settings[key as SettingKey].type)}`);
  }
  return parsed as FileConfig;
}

function describeType(schema: TSchema): string {
  const type = (schema as { type?: string }).type;
  if (type === 'boolean') return 'true or false (a JSON boolean, not a string)';
  if (type === 'string') return `a string (${(schema as { description?: string }).description})`;
  return `a whole number (or a string like "16G" or "30m" where units make sense)`;
}

/** One setting's value as given, and the name to blame when it is wrong. */
interface Given {
  name: string;
  value: string | number | boolean | string[];
}

class Sources {
  readonly #flags: ConfigFlags;
  readonly #env: Env;
  readonly #file: FileConfig;

  constructor(flags: ConfigFlags, env: Env, file: FileConfig) {
    this.#flags = flags;
    this.#env = env;
    this.#file = file;
  }

  given(key: SettingKey): Given | undefined {
    const setting = settings[key] as { env: string[]; flag?: keyof ConfigFlags };
    const flag = setting.flag ? this.#flags[setting.flag] : undefined;
    if (flag !== undefined) return { name: `--${setting.flag?.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, value: flag };
    // An empty variable (NAME= in an environment file) counts as not set.
    for (const name of setting.env) {
      const value = this.#env[name];
      if (value !== undefined && value !== '') return { name, value };
    }
    const value = this.#file[key];
    return value === undefined ? undefined : { name: `config file key ${key}`, value };
  }

  string(key: SettingKey, fallback: string): string;
  string(key: SettingKey, fallback: null): string | null;
  string(key: SettingKey, fallback: string | null): string | null {
    const given = this.given(key);
    return given === undefined ? fallback : String(given.value);
  }

  bool(key: SettingKey, fallback: boolean): boolean {
    const given = this.given(key);
    if (given === undefined) return fallback;
    if (typeof given.value === 'boolean') return given.value;
    if (/^(1|true|yes|on)$/i.test(String(given.value))) return true;
    if (/^(0|false|no|off)$/i.test(String(given.value))) return false;
    throw configError(`${given.name}="${given.value}" is not true or false`);
  }

  count(key: SettingKey, fallback: number, min: number, max: number): number {
    const given = this.given(key);
    if (given === undefined) return fallback;
    const raw = String(given.value).trim();
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw configError(`${given.name}="${given.value}" is not a whole number from ${min} to ${max}`);
    return value;
  }

  choice<T extends string>(key: SettingKey, fallback: T, allowed: readonly T[]): T {
    const given = this.given(key);
    if (given === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(String(given.value)))
      throw configError(`${given.name}="${given.value}" is not one of ${allowed.join(', ')}`);
    return given.value as T;
  }

  duration(key: SettingKey, fallback: string): number {
    const given = this.given(key);
    return parseDuration(given === undefined ? fallback : String(given.value), given?.name ?? key);
  }

  /** A short time: 500ms, 2s, or a duration as `duration` takes it; from `min` to `max` ms. */
  milliseconds(key: SettingKey, fallback: string, min: number, max: number): number {
    const given = this.given(key);
    const value = given === undefined ? fallback : String(given.value).trim();
    const name = given?.name ?? key;
    const ms = /^\d+ms$/.test(value) ? Number.parseInt(value, 10) : parseDuration(value, name) * 1000;
    if (ms < min || ms > max) throw configError(`${name}="${value}" is not from ${min}ms to ${max / 1000}s`);
    return ms;
  }

  bytes(key: SettingKey, fallback: string): number {
    const given = this.given(key);
    return parseBytes(given?.name ?? key, given === undefined ? fallback : String(given.value));
  }

  /** A retention period (30d, 12h), or off or 0 for keeping rows for ever. */
  retention(key: SettingKey, fallback: string): number {
    const given = this.given(key);
    const value = given === undefined ? fallback : String(given.value);
    if (/^\s*(off|never|0)\s*$/i.test(value)) return 0;
    return parseDuration(value, given?.name ?? key);
  }

  trustProxy(): string[] {
    const given = this.given('trust_proxy');
    return given === undefined ? [] : parseTrustProxy(given.value as string | string[], given.name);
  }

  listen(key: SettingKey, fallback: string): { host: string; port: number } {
    const given = this.given(key);
    return parseListen(given === undefined ? fallback : String(given.value), given?.name);
  }
}

export function parseListen(value: string, name = 'listen address'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  const host = match ? (match[1] ?? (match[2] || '0.0.0.0')) : '';
  if (!match || port > 65535 || (match[1] !== undefined && isIP(host) !== 6))
    throw configError(`${name}="${value}" is not HOST:PORT (e.g. 127.0.0.1:8080, :8080 or [::1]:8080)`);
  return { host, port };
}

const byteUnits: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses a byte count: 1048576, 512M, 16G (binary units; a trailing B or iB is allowed). */
export function parseBytes(name: string, value: string): number {
  const match = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = match ? Number(match[1]) * byteUnits[match[2].toLowerCase()] : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw configError(`${name}="${value}" is not a size like 16G, 512M or 1048576`);
  return bytes;
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

function databaseTarget(sources: Sources, env: Env, dataDir: string): DatabaseTarget {
  const given = sources.given('database_url');
  // The seed's DB_DRIVER and DB_DSN, when no URL is given by flag or DATABASE_URL.
  if (env.DB_DRIVER && (given === undefined || given.name.startsWith('config file'))) {
    const driver = env.DB_DRIVER;
    if (driver === 'postgres' || driver === 'pgx') return { dialect: 'postgres', url: dsnToUrl(env.DB_DSN ?? '') };
    if (driver === 'sqlite3' || driver === 'sqlite') return sqliteTarget(env.DB_DSN ?? '', dataDir);
    throw configError(`DB_DRIVER="${driver}" is not sqlite3 or postgres`);
  }
  if (given === undefined || given.value === '') return { dialect: 'sqlite', path: join(dataDir, 'muster.db') };
  const url = String(given.value);
  if (/^postgres(ql)?:/.test(url)) {
    try {
      new URL(url);
    } catch {
      throw configError(`${given.name} is not a postgres:// URL`);
    }
    return { dialect: 'postgres', url };
  }
  return sqliteTarget(url, dataDir);
}

function sqliteTarget(value: string, dataDir: string): DatabaseTarget {
  const path = value.replace(/^(sqlite3?|file):(\/\/)?/, '').replace(/\?.*$/, '');
  if (!path) return { dialect: 'sqlite', path: join(dataDir, 'muster.db') };
  return { dialect: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
}

/** Flags > environment > config file > defaults (DESIGN.md, "Config"). Every value is checked; a bad one is a one-line error. */
export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): Config {
  const sources = new Sources(flags, env, readFileConfig(flags.config ?? env.MUSTER_CONFIG));
  const dataDir = resolve(sources.string('data_dir', 'muster-data'));
  const listen = sources.listen('listen', ':8080');
  return {
    listen,
    tftp: tftpConfig(sources),
    tls: tlsConfig(sources),
    publicUrl: publicUrl(sources, listen),
    dataDir,
    artifactDir: resolve(sources.string('artifact_dir', join(dataDir, 'artifacts'))),
    artifactMaxBytes: sources.bytes('artifact_max_bytes', '16G'),
    artifactUrlTtlSeconds: sources.duration('artifact_url_ttl', '6h'),
    database: databaseTarget(sources, env, dataDir),
    dbPoolSize: sources.count('db_pool', 10, 1, 1000),
    sqliteSync: sources.choice('sqlite_sync', 'normal', ['normal', 'full']),
    enableAuth: sources.bool('enable_auth', true),
    jwtSecret: env.JWT_SECRET || env.MUSTER_JWT_SECRET || null,
    masterKey: masterKey(env),
    masterKeyFile: resolve(sources.string('master_key_file', join(dataDir, 'master.key'))),
    jwtExpirySeconds: sources.duration('jwt_expiry', '24h'),
    logLevel: sources.choice('log_level', 'info', logLevels),
    logFormat: sources.choice('log_format', defaultLogFormat(), logFormats),
    builder: {
      command: sources.string('builder_command', null),
      timeoutSeconds: sources.duration('builder_timeout', '30m'),
      maxAttempts: sources.count('builder_attempts', 1, 1, 20),
    },
    enrollRatePerMinute: sources.count('enroll_rate', 600, 0, 1_000_000),
    loginRatePerMinute: sources.count('login_rate', 10, 1, 1_000_000),
    trustProxy: sources.trustProxy(),
    bootRate: { perMinute: sources.count('boot_rate', 600, 0, 1_000_000), burst: sources.count('boot_burst', 400, 1, 1_000_000) },
    discoveryPerMinute: sources.count('discovery_rate', 1000, 0, 1_000_000),
    render: {
      threads: sources.count('render_threads', Math.min(availableParallelism(), 2), 1, 64),
      timeoutMs: sources.milliseconds('render_timeout', '1s', 10, 60_000),
      maxQueued: sources.count('render_queue', 1024, 1, 100_000),
    },
    bootRenders: {
      running: sources.count('boot_renders_per_source', 2, 1, 1000),
      waiting: sources.count('boot_renders_waiting', 64, 0, 100_000),
    },
    factsMaxBytes: sources.bytes('facts_max_bytes', '16K'),
    retention: {
      bootRequestsSeconds: sources.retention('retention_boot_requests', '30d'),
      eventsSeconds: sources.retention('retention_events', '90d'),
    },
    claimFailuresPerMinute: sources.count('claim_failure_rate', 10, 1, 1_000_000),
    tunnelPorts: portRange(sources.string('tunnel_ports', '20000-29999') as string),
    certificateValiditySeconds: sources.duration('certificate_validity', '90d'),
  };
}

/** FIRST-LAST, two ports, FIRST ≤ LAST. */
function portRange(value: string): { first: number; last: number } {
  const match = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(value);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (!match || first < 1 || last > 65_535 || first > last) {
    throw configError(`tunnel_ports="${value}" is not FIRST-LAST with 1 <= FIRST <= LAST <= 65535 (e.g. 20000-29999)`);
  }
  return { first, last };
}

/** MUSTER_MASTER_KEY, checked here so that a bad one stops the server at start; the error never quotes it. */
function masterKey(env: Env): string | null {
  const value = env.MUSTER_MASTER_KEY?.trim();
  if (!value) return null;
  try {
    Keyring.parse(value, 'MUSTER_MASTER_KEY');
  } catch (error) {
    throw configError((error as Error).message);
  }
  return value;
}

/** The HTTPS listener: off unless tls_listen is set; tls_cert and tls_key go together. */
function tlsConfig(sources: Sources): Config['tls'] {
  const value = sources.string('tls_listen', null);
  if (value === null || /^(off|false|no|0)$/i.test(value.trim())) return null;
  const certFile = sources.string('tls_cert', null);
  const keyFile = sources.string('tls_key', null);
  if ((certFile === null) !== (keyFile === null))
    throw configError('tls_cert and tls_key go together: give both, or neither for a certificate from muster’s CA');
  return { ...sources.listen('tls_listen', ''), certFile: certFile && resolve(certFile), keyFile: keyFile && resolve(keyFile) };
}

/** `off` turns TFTP off; no value means port 69 on every address, or 6969 where 69 is not permitted. */
function tftpConfig(sources: Sources): Config['tftp'] {
  const value = sources.string('tftp_listen', null);
  if (value !== null && /^(off|false|no|0)$/i.test(value.trim())) return null;
  const address = value === null ? { host: '0.0.0.0', port: 69, fallback: 6969 } : { ...sources.listen('tftp_listen', ''), fallback: null };
  const perSecond = sources.count('tftp_rate', 10, 0, 1_000_000);
  const fileLimit = sources.count('tftp_file_limit', 30, 0, 3600);
  return {
    ...address,
    singlePort: sources.bool('tftp_single_port', false),
    workers: sources.count('tftp_workers', Math.min(availableParallelism(), 4), 0, 64),
    requestRate: perSecond === 0 ? null : { perSecond, burst: sources.count('tftp_burst', 50, 1, 1_000_000) },
    maxPerClient: sources.count('tftp_max_per_client', 64, 1, 65_535),
    maxTransfers: sources.count('tftp_max_transfers', 1000, 1, 1_000_000),
    fileLimitSeconds: fileLimit === 0 ? null : fileLimit,
  };
}

function publicUrl(sources: Sources, listen: { host: string; port: number }): string {
  const given = sources.given('public_url');
  if (given) {
    const value = String(given.value);
    if (!/^https?:\/\/[^/]+/.test(value)) throw configError(`${given.name}="${value}" is not an http(s) URL`);
    return value.replace(/\/+$/, '');
  }
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? hostname() : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

const proxyNames = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Trusted proxies: addresses, CIDRs, or proxy-addr's names (loopback, linklocal, uniquelocal), separated by
 * commas or spaces. A bad entry is an error, never silently skipped.
 */
export function parseTrustProxy(value: string | string[] | undefined, name = 'trust_proxy'): string[] {
  if (value === undefined) return [];
  const entries = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/[\s,]+/)).filter(Boolean);
  for (const entry of entries) {
    if (proxyNames.has(entry)) continue;
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
    if (!family || !prefixOk || extra !== undefined) {
      throw configError(`${name} entry "${entry}" is not an address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8, ::1, loopback)`);
    }
  }
  return entries;
}

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '::1']);

export function isLoopbackOnly(host: string): boolean {
  return loopbackHosts.has(host) || host.startsWith('127.');
}

/** The configuration as `muster serve --print-config` shows it: secrets masked, the database password too. */
export function printableConfig(config: Config): Record<string, unknown> {
  const database =
    config.database.dialect === 'postgres'
      ? { dialect: 'postgres', url: maskPassword(config.database.url) }
      : { dialect: 'sqlite', path: config.database.path };
  return { ...config, database, jwtSecret: config.jwtSecret ? '[set]' : null, masterKey: config.masterKey ? '[set]' : null };
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '*****';
    return parsed.toString();
  } catch {
    return '[unparsable URL]';
  }
}
