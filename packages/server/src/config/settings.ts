import { type TSchema, Type } from 'typebox';
import type { LogFormat } from '../platform/log/logger.ts';

// The settings of `muster serve`, kept apart from config.ts so that the CLI's help can show them without
// loading the server.

/** Options given on the command line; undefined means "not given". */
export interface ConfigFlags {
  listen?: string;
  tftpListen?: string;
  tlsListen?: string;
  dataDir?: string;
  databaseUrl?: string;
  config?: string;
  enableAuth?: string;
  logLevel?: string;
  logFormat?: string;
  trustProxy?: string;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const logFormats = ['pretty', 'json'] as const satisfies readonly LogFormat[];
export type { LogFormat };

const text = (description: string) => Type.String({ description });
const whole = (description: string) => Type.Union([Type.Integer(), Type.String()], { description });
const sizeOrCount = (description: string) => Type.Union([Type.Integer({ minimum: 1 }), Type.String()], { description });

/**
 * Every setting, once: its key in a config file (JSON), the environment variables that set it (the first
 * set one wins), the command-line flag if it has one, what a file may hold, and its default as shown in help.
 * Flags win over the environment, which wins over the file, which wins over the default.
 */
export const settings = {
  listen: {
    env: ['LISTEN_ADDR', 'MUSTER_LISTEN'],
    flag: 'listen',
    type: text('HOST:PORT for HTTP; :PORT is every interface'),
    default: ':8080',
  },
  tftp_listen: {
    env: ['MUSTER_TFTP_LISTEN'],
    flag: 'tftpListen',
    type: text('HOST:PORT for TFTP, or off'),
    default: ':69, else :6969 where 69 is not permitted',
  },
  tls_listen: {
    env: ['MUSTER_TLS_LISTEN'],
    flag: 'tlsListen',
    type: text('HOST:PORT for HTTPS with client certificates (devices with a muster certificate), or off'),
    default: 'off',
  },
  tls_cert: {
    env: ['MUSTER_TLS_CERT'],
    type: text('the HTTPS certificate (PEM file); made by muster’s CA when unset'),
    default: 'from muster’s CA',
  },
  tls_key: { env: ['MUSTER_TLS_KEY'], type: text('the key of tls_cert (PEM file)'), default: 'with tls_cert' },
  tftp_single_port: {
    env: ['MUSTER_TFTP_SINGLE_PORT'],
    type: Type.Boolean({ description: 'answer every transfer from port 69 (firewalls)' }),
    default: 'false',
  },
  tftp_workers: { env: ['MUSTER_TFTP_WORKERS'], type: whole('transfer threads, 0 for none'), default: 'one per core, at most 4' },
  tftp_rate: { env: ['MUSTER_TFTP_RATE'], type: whole('new requests a second per client address, 0 for no limit'), default: '10' },
  tftp_burst: { env: ['MUSTER_TFTP_BURST'], type: whole('requests a client address may make at once'), default: '50' },
  tftp_max_per_client: { env: ['MUSTER_TFTP_MAX_PER_CLIENT'], type: whole('transfers at once per client address'), default: '64' },
  tftp_max_transfers: { env: ['MUSTER_TFTP_MAX_TRANSFERS'], type: whole('transfers at once in all'), default: '1000' },
  tftp_file_limit: {
    env: ['MUSTER_TFTP_FILE_LIMIT'],
    type: whole('seconds a client waits for one file (Pi: TFTP_FILE_TIMEOUT); large transfers are admitted by it, 0 for off'),
    default: '30',
  },
  public_url: { env: ['MUSTER_PUBLIC_URL'], type: text('how machines reach HTTP'), default: 'http://HOST:PORT of listen' },
  data_dir: { env: ['MUSTER_DATA_DIR'], flag: 'dataDir', type: text('SQLite file and build directories'), default: './muster-data' },
  master_key_file: {
    env: ['MUSTER_MASTER_KEY_FILE'],
    type: text('the master key file, made once (0600) when missing; MUSTER_MASTER_KEY wins over it'),
    default: 'DATA_DIR/master.key',
  },
  artifact_dir: { env: ['MUSTER_ARTIFACT_DIR'], type: text('artifact files by sha256'), default: 'DATA_DIR/artifacts' },
  artifact_max_bytes: { env: ['MUSTER_ARTIFACT_MAX_BYTES'], type: sizeOrCount('largest artifact upload'), default: '16G' },
  database_url: {
    env: ['DATABASE_URL', 'MUSTER_DATABASE_URL'],
    flag: 'databaseUrl',
    type: text('postgres://… or a SQLite file'),
    default: 'DATA_DIR/muster.db',
  },
  db_pool: { env: ['MUSTER_DB_POOL'], type: whole('PostgreSQL connections per server'), default: '10' },
  sqlite_sync: { env: ['MUSTER_SQLITE_SYNC'], type: text('normal or full'), default: 'normal' },
  enable_auth: {
    env: ['ENABLE_AUTH', 'MUSTER_ENABLE_AUTH'],
    flag: 'enableAuth',
    type: Type.Boolean({ description: 'require logins' }),
    default: 'true',
  },
  jwt_expiry: { env: ['JWT_EXPIRY', 'MUSTER_JWT_EXPIRY'], type: text('session lifetime'), default: '24h' },
  log_level: { env: ['MUSTER_LOG_LEVEL'], flag: 'logLevel', type: text(logLevels.join(', ')), default: 'info' },
  log_format: { env: ['MUSTER_LOG_FORMAT'], flag: 'logFormat', type: text('pretty or json'), default: 'pretty on a terminal, else json' },
  builder_command: { env: ['MUSTER_BUILDER_COMMAND'], type: text('run by build jobs'), default: 'none' },
  builder_timeout: { env: ['MUSTER_BUILDER_TIMEOUT'], type: text('longest build'), default: '30m' },
  builder_attempts: { env: ['MUSTER_BUILDER_ATTEMPTS'], type: whole('tries per build, 1 to 20'), default: '1' },
  enroll_rate: { env: ['MUSTER_ENROLL_RATE'], type: whole('enrollments a minute per source, 0 for no limit'), default: '600' },
  login_rate: { env: ['MUSTER_LOGIN_RATE'], type: whole('failed logins a minute per source and per user'), default: '10' },
  trust_proxy: {
    env: ['MUSTER_TRUST_PROXY'],
    flag: 'trustProxy',
    type: Type.Union([Type.String(), Type.Array(Type.String())], { description: 'proxies whose X-Forwarded-For is believed' }),
    default: 'none',
  },
  boot_rate: { env: ['MUSTER_BOOT_RATE'], type: whole('boot door requests a minute per source, 0 for no limit'), default: '600' },
  boot_burst: { env: ['MUSTER_BOOT_BURST'], type: whole('boot door requests a source may make at once'), default: '400' },
  discovery_rate: {
    env: ['MUSTER_DISCOVERY_RATE'],
    type: whole('new machines a minute from all anonymous doors, 0 for no limit'),
    default: '1000',
  },
  render_threads: {
    env: ['MUSTER_RENDER_THREADS'],
    type: whole('threads that render templates, 1 to 64'),
    default: 'one per core, at most 2',
  },
  render_timeout: {
    env: ['MUSTER_RENDER_TIMEOUT'],
    type: text('the longest one template may render (500ms, 2s); its thread is then ended and replaced'),
    default: '1s',
  },
  render_queue: {
    env: ['MUSTER_RENDER_QUEUE'],
    type: whole('renders that may wait for a thread; more are refused (503)'),
    default: '1024',
  },
  boot_renders_per_source: {
    env: ['MUSTER_BOOT_RENDERS_PER_SOURCE'],
    type: whole('answers that may render a template worked on at once per source at the anonymous doors'),
    default: '2',
  },
  boot_renders_waiting: {
    env: ['MUSTER_BOOT_RENDERS_WAITING'],
    type: whole('answers per source waiting their turn past boot_renders_per_source; more are refused (429)'),
    default: '64',
  },
  facts_max_bytes: { env: ['MUSTER_FACTS_MAX_BYTES'], type: sizeOrCount('largest hardware facts an enrollment may send'), default: '16K' },
  retention_boot_requests: {
    env: ['MUSTER_RETENTION_BOOT_REQUESTS'],
    type: text('how long boot sessions are kept, or off'),
    default: '30d',
  },
  artifact_url_ttl: {
    env: ['MUSTER_ARTIFACT_URL_TTL'],
    type: text('how long a signed artifact URL in a boot answer works'),
    default: '6h',
  },
  claim_failure_rate: {
    env: ['MUSTER_CLAIM_FAILURE_RATE'],
    type: whole('wrong one-time passwords a minute per source before it waits; valid claims are never counted'),
    default: '10',
  },
  tunnel_ports: {
    env: ['MUSTER_TUNNEL_PORTS'],
    type: text('FIRST-LAST: the tunnel ports fleet slots take, unique across fleets'),
    default: '20000-29999',
  },
  certificate_validity: { env: ['MUSTER_CERTIFICATE_VALIDITY'], type: text('how long a device certificate is valid'), default: '90d' },
  retention_events: { env: ['MUSTER_RETENTION_EVENTS'], type: text('how long device events are kept, or off'), default: '90d' },
} satisfies Record<string, { env: string[]; flag?: keyof ConfigFlags; type: TSchema; default: string }>;

export type SettingKey = keyof typeof settings;
