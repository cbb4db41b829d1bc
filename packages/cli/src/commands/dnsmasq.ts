import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MusterError } from '@muster/contract/errors.ts';
import { Command, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { ApiClient } from '../client.ts';
import { readStoredLogin } from '../config-store.ts';
import {
  configWarnings,
  type DnsmasqConfigOptions,
  parseBootFile,
  parseConfigPath,
  parseInterfaceName,
  parseIPv4,
  parsePort,
  parseSubnet,
  renderDnsmasqConfig,
} from '../dnsmasq/config.ts';
import { PiDirectoryMaterialiser } from '../dnsmasq/materialise.ts';
import { defaultSerialPattern, normalizeRoot, parseSerialPattern } from '../dnsmasq/pi-serial.ts';
import { HttpPiTreeSource } from '../dnsmasq/tree-source.ts';
import { startDnsmasqWatch, type WatchEvent } from '../dnsmasq/watch.ts';
import { printNote, printText } from '../output.ts';
import { globalOptions, resolveConnection } from '../session.ts';

type ConfigOptions = Omit<DnsmasqConfigOptions, 'version'>;

interface WatchOptions {
  log: string;
  tftpRoot: string;
  logRoot?: string;
  serialPattern?: RegExp;
  fromStart?: boolean;
  warm: boolean;
}

export function dnsmasqCommand(): Command {
  const dnsmasq = new Command('dnsmasq').description('work with dnsmasq: a proxy-DHCP config pointing at muster, and the log-watch mode');

  dnsmasq
    .command('config')
    .description('print a dnsmasq config: proxy-DHCP next to the existing DHCP server, iPXE chained to muster, Pis')
    .requiredOption('--subnet <net[/len]>', 'the LAN dnsmasq answers proxy-DHCP on, e.g. 192.168.1.0/24', parseSubnet)
    .requiredOption('--muster-host <ip>', "muster's address as machines on the LAN reach it (its HTTP and TFTP)", parseIPv4)
    .option('--http-port <port>', "muster's HTTP port", parsePort, 8080)
    .option('--tftp-port <port>', "muster's TFTP port (PXE ROMs and Pis only ever use 69)", parsePort, 69)
    .option('--interface <name>', 'answer on this interface only', parseInterfaceName)
    .option('--no-pi', 'leave out the Raspberry Pi answer')
    .option('--tftp-local <dir>', 'dnsmasq serves TFTP from DIR itself, for `muster dnsmasq watch`', parseConfigPath)
    .option('--log-file <file>', 'dnsmasq logs to FILE (log-facility), e.g. for `muster dnsmasq watch --log`', parseConfigPath)
    .addOption(new Option('--bios-file <name>', 'iPXE for BIOS PXE ROMs').argParser(parseBootFile).default('undionly.kpxe'))
    .addOption(new Option('--uefi-file <name>', 'iPXE for x86-64 UEFI (or snponly.efi)').argParser(parseBootFile).default('ipxe.efi'))
    .addOption(new Option('--arm64-file <name>', 'iPXE for ARM64 UEFI').argParser(parseBootFile).default('snp-arm64.efi'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  muster dnsmasq config --subnet 192.168.1.0/24 --muster-host 192.168.1.10 > /etc/dnsmasq.d/muster.conf',
        '  muster dnsmasq config --subnet 192.168.1.0/24 --muster-host 192.168.1.10 \\',
        '      --tftp-local /srv/tftp --log-file /var/log/dnsmasq.log   # for `muster dnsmasq watch`',
      ].join('\n'),
    )
    .action((options: ConfigOptions) => {
      const config: DnsmasqConfigOptions = { ...options, version: packageJson.version };
      for (const warning of configWarnings(config)) printNote(`muster: warning: ${warning}`);
      process.stdout.write(renderDnsmasqConfig(config));
    });

  dnsmasq
    .command('watch')
    .description("follow dnsmasq's log and give each new Pi serial its directory under the TFTP root, from muster")
    .requiredOption('--log <file>', "dnsmasq's log: its log-facility file, or syslog (followed across rotation)")
    .requiredOption('--tftp-root <dir>', "dnsmasq's tftp-root: serial directories are made in it")
    .option('--log-root <dir>', 'the TFTP root as the log names it, when dnsmasq sees it elsewhere (a container)')
    .option(
      '--serial-pattern <regex>',
      `what a serial directory name looks like (default ${defaultSerialPattern.source})`,
      parseSerialPattern,
    )
    .option('--from-start', 'also act on what the log holds already')
    .option('--no-warm', "do not fetch every tree's shared files at start; fetch them when a Pi first needs them")
    .addHelpText(
      'after',
      [
        '',
        'Prints one line per directory made (with --json, one JSON object per line); errors go to stderr.',
        'A serial refused by a rule gets no directory; an unreachable server is retried with backoff.',
        '',
        'Example:',
        '  muster dnsmasq watch --log /var/log/dnsmasq.log --tftp-root /srv/tftp',
      ].join('\n'),
    )
    .action(watch);

  return dnsmasq;
}

async function watch(options: WatchOptions, command: Command): Promise<void> {
  const root = resolve(options.tftpRoot);
  const info = await stat(root).catch(() => null);
  if (!info?.isDirectory()) throw new MusterError('bad_request', `--tftp-root ${options.tftpRoot} is not a directory`);
  const logDir = resolve(options.log, '..');
  if (!(await stat(logDir).catch(() => null))?.isDirectory()) {
    throw new MusterError('bad_request', `--log ${options.log}: its directory ${logDir} does not exist`);
  }
  const global = globalOptions(command);
  const stored = global.server && global.token ? {} : await readStoredLogin();
  const connection = resolveConnection(global, stored);
  const source = new HttpPiTreeSource(new ApiClient(connection), connection.token);
  const json = Boolean(global.json);
  // dnsmasq writes the root as configured: as given, or through a symlink resolved.
  const spellings = [root, await realpath(root), options.logRoot === undefined ? undefined : resolve(options.logRoot)];
  const logRoots = [...new Set(spellings.filter((r) => r !== undefined).map(normalizeRoot))];

  const stopped = firstSignal();
  const running = await startDnsmasqWatch({
    log: options.log,
    fromStart: options.fromStart,
    materialiser: new PiDirectoryMaterialiser({ root, source }),
    catalog: options.warm ? source : undefined,
    onWarm: (outcome) =>
      printNote(
        outcome instanceof Error
          ? `muster: cannot fill the cache ahead (${outcome.message}); files are fetched when a Pi first needs them`
          : `cache: ${outcome.files} shared files (${formatBytes(outcome.bytes)}) fetched for ${outcome.trees} Pi ${outcome.trees === 1 ? 'tree' : 'trees'}`,
      ),
    logRoots,
    serialPattern: options.serialPattern ?? defaultSerialPattern,
    onEvent: (event) => report(event, json),
    onReadError: (error) => printNote(`muster: reading ${options.log}: ${error.message}`),
  });
  printNote(`following ${resolve(options.log)}; serial directories go to ${root}, from ${connection.server}`);
  await stopped;
  await running.close();
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function report(event: WatchEvent, json: boolean): void {
  if (json) return printText(JSON.stringify({ at: new Date().toISOString(), ...event }));
  if (event.event === 'materialised') {
    const machine = `machine ${event.machine_id}${event.machine_created ? ' (new)' : ''}`;
    const files = `${event.files} files (${event.rendered} rendered, ${event.cached} from cache, ${event.fetched} fetched)`;
    return printText(`${event.serial}  materialised  tree ${event.tree}  ${machine}  ${files}  ${event.ms} ms`);
  }
  const next =
    event.retry_in_ms === null
      ? 'giving up until dnsmasq logs it again'
      : event.event === 'refused'
        ? `asking again after ${Math.round(event.retry_in_ms / 1000)}s`
        : `retrying in ${Math.round(event.retry_in_ms / 100) / 10}s`;
  printNote(`muster: ${event.serial}: ${event.event === 'refused' ? 'refused: ' : ''}${event.message}; ${next}`);
}

function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
