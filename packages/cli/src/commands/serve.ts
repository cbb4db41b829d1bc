import { setFlagsFromString } from 'node:v8';
import { logFormats, logLevels, type SettingKey, settings } from '@muster/server/config/settings.ts';
import { Command, Option } from 'commander';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage } from '../database-options.ts';

interface ServeOptions extends DatabaseOptions {
  listen?: string;
  tftpListen?: string;
  tlsListen?: string;
  config?: string;
  logLevel?: string;
  logFormat?: string;
  enableAuth?: string | true;
  printConfig?: boolean;
  trustProxy?: string;
}

/** A setting's help: what it does, its environment variables and its default, from the one settings table. */
function described(key: SettingKey, what: string): string {
  const setting = settings[key];
  return `${what} (env ${setting.env.join(' or ')}; default ${setting.default})`;
}

export function serveCommand(): Command {
  const command = new Command('serve')
    .description('run the muster server: API, dashboard and boot services')
    .option('--listen <host:port>', described('listen', 'HTTP address; :PORT listens on every interface'))
    .option('--tftp-listen <host:port>', described('tftp_listen', 'TFTP address for Pis and PXE ROMs, or off'))
    .option(
      '--tls-listen <host:port>',
      described('tls_listen', 'HTTPS address; devices may present their muster certificate (mutual TLS)'),
    );
  addDatabaseOptions(command)
    .option('--config <file>', 'JSON config file; its keys are the settings in snake_case, e.g. {"listen": ":8080"} (env MUSTER_CONFIG)')
    .addOption(new Option('--log-level <level>', described('log_level', 'log level')).choices(logLevels))
    .addOption(new Option('--log-format <format>', described('log_format', 'pretty (a line per entry) or json')).choices(logFormats))
    .option('--enable-auth [bool]', described('enable_auth', 'require logins: true or false; false is allowed on loopback only'))
    .option(
      '--trust-proxy <list>',
      described('trust_proxy', 'addresses or CIDRs of proxies whose X-Forwarded-For is believed, comma-separated'),
    )
    .option('--print-config', 'print the effective configuration (secrets masked) as JSON and exit')
    .addHelpText(
      'after',
      `\nEvery setting, its environment variables and its default:\n${Object.entries(settings)
        .map(([key, setting]) => `  ${key.padEnd(20)} ${setting.env.join(', ').padEnd(36)} ${setting.default}`)
        .join(
          '\n',
        )}\n  JWT_SECRET (environment only): the session signing key; default: generated once into the database\n  MUSTER_MASTER_KEY (environment only): the master key; default: the key file (master_key_file)\n\nExample:\n  muster serve --listen 127.0.0.1:8080 --tftp-listen 0.0.0.0:69 --data-dir /var/lib/muster`,
    )
    .action(serve);
  return command;
}

// Loading and starting the server allocates much short-lived garbage, and V8 grows its young generation
// (two semi-spaces) to the largest size, 32 MiB, on the way, which an idle server then keeps. Held at its
// first size until the server is up, and left to grow as load asks from then on, it costs an idle server
// ~12 MiB less and a busy one nothing (bench/README.md).
const youngGenerationGrowth = { held: 1, normal: 2 };

async function serve(options: ServeOptions): Promise<void> {
  setFlagsFromString(`--semi-space-growth-factor=${youngGenerationGrowth.held}`);
  const { loadConfig, printableConfig, startServer } = await loadServerPackage();
  const config = loadConfig({
    listen: options.listen,
    tftpListen: options.tftpListen,
    tlsListen: options.tlsListen,
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    config: options.config,
    enableAuth: options.enableAuth === true ? 'true' : options.enableAuth,
    logLevel: options.logLevel,
    logFormat: options.logFormat,
    trustProxy: options.trustProxy,
  });
  if (options.printConfig) {
    process.stdout.write(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
    return;
  }
  // Listen for the stop signal before starting: the server answers requests before startServer returns.
  const stopped = firstSignal();
  const server = await startServer(config);
  setFlagsFromString(`--semi-space-growth-factor=${youngGenerationGrowth.normal}`);
  await stopped;
  forceExitOnSecondSignal(Date.now());
  await server.close();
  process.exit(0);
}

// One stop can arrive twice: Ctrl-C goes to the whole process group, and a wrapper may pass it on as well.
// Only a later one is a second press.
const sameSignalWindowMs = 1000;

/** A second Ctrl-C while the server drains means "stop now". */
function forceExitOnSecondSignal(firstAt: number): void {
  const force = () => {
    if (Date.now() - firstAt > sameSignalWindowMs) process.exit(1);
  };
  process.on('SIGINT', force);
  process.on('SIGTERM', force);
}

function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
