import { Command, Option } from 'commander';
import { addDatabaseOptions, type DatabaseOptions, loadServerPackage } from '../database-options.ts';

interface ServeOptions extends DatabaseOptions {
  listen?: string;
  tftpListen?: string;
  config?: string;
  logLevel?: string;
  enableAuth?: string | true;
  trustProxy?: string;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function serveCommand(): Command {
  const command = new Command('serve')
    .description('run the muster server: API, dashboard and boot services')
    .option('--listen <host:port>', 'HTTP address (env MUSTER_LISTEN or LISTEN_ADDR; default :8080)')
    .option(
      '--tftp-listen <host:port>',
      'TFTP address for Pis and PXE ROMs, or off (env MUSTER_TFTP_LISTEN; default :69, or :6969 with a warning where 69 is not permitted)',
    );
  addDatabaseOptions(command)
    .option('--config <file>', 'JSON config file (env MUSTER_CONFIG)')
    .addOption(new Option('--log-level <level>', 'log level (env MUSTER_LOG_LEVEL; default info)').choices(logLevels))
    .option('--enable-auth [bool]', 'require logins: true or false; false is allowed on loopback only (env ENABLE_AUTH)')
    .option(
      '--trust-proxy <list>',
      'addresses or CIDRs of proxies whose X-Forwarded-For is believed, comma-separated (env MUSTER_TRUST_PROXY; default none)',
    )
    .addHelpText('after', '\nExample:\n  muster serve --listen 127.0.0.1:8080 --tftp-listen 0.0.0.0:69 --data-dir /var/lib/muster')
    .action(serve);
  return command;
}

async function serve(options: ServeOptions): Promise<void> {
  const { loadConfig, startServer } = await loadServerPackage();
  const config = loadConfig({
    listen: options.listen,
    tftpListen: options.tftpListen,
    dataDir: options.dataDir,
    databaseUrl: options.databaseUrl,
    config: options.config,
    enableAuth: options.enableAuth === true ? 'true' : options.enableAuth,
    logLevel: options.logLevel,
    trustProxy: options.trustProxy,
  });
  // Listen for the stop signal before starting: the server answers requests before startServer returns.
  const stopped = firstSignal();
  const server = await startServer(config);
  await stopped;
  forceExitOnSecondSignal(Date.now());
  await server.close();
  process.exit(0);
}

// One Ctrl-C can arrive twice: from the terminal and forwarded by bin/muster.js. Only a later one is a second press.
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
