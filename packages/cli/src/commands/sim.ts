import { isIP } from 'node:net';
import { MusterError } from '@muster/contract/errors.ts';
import { maxStormCount } from '@muster/sim/arrivals.ts';
import type { PiModel } from '@muster/sim/config-txt.ts';
import { maxSerial, parseSerialStart } from '@muster/sim/pi-serial.ts';
import { defaultSerialStart, type PiStormSummary, runPiStorm } from '@muster/sim/pi-storm.ts';
import { type PxeStormSummary, runPxeStorm } from '@muster/sim/pxe.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type Field, printJson, printText, renderFields, renderTable } from '../output.ts';
import { wantsJson } from '../session.ts';

interface CommonOptions {
  count: number;
  arrival: number;
  concurrency?: number;
  deadline?: number;
}

interface PiOptions extends CommonOptions {
  model: PiModel;
  host: string;
  tftpPort: number;
  serialStart?: number;
  fileTimeout: number;
  sameSource?: boolean;
}

interface PxeOptions extends CommonOptions {
  url: string;
  tftp?: boolean;
  tftpHost?: string;
  tftpPort: number;
  macStart?: number;
  timeout: number;
  sleep: boolean;
}

const maxSeconds = 3600;
// A table lists this many failures; --json has them all.
const failuresShown = 20;

function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > maxStormCount)
    throw new InvalidArgumentError(`expected a whole number from 1 to ${maxStormCount}`);
  return n;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > maxSeconds)
    throw new InvalidArgumentError(`expected seconds from 0 to ${maxSeconds}`);
  return n;
}

function parsePositiveSeconds(value: string): number {
  const n = parseSeconds(value);
  if (n === 0) throw new InvalidArgumentError(`expected seconds from more than 0 to ${maxSeconds}`);
  return n;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port from 1 to 65535');
  return n;
}

function parseHost(value: string): string {
  const host = value.trim();
  if (isIP(host) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(host)) {
    throw new InvalidArgumentError('expected an IP address or a host name, e.g. 127.0.0.1');
  }
  return host;
}

function parseSerial(value: string): number {
  const serial = parseSerialStart(value);
  if (typeof serial === 'string') throw new InvalidArgumentError(serial.replace(/^"[^"]*" is /, 'this is '));
  return serial;
}

function parseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new InvalidArgumentError('expected an http:// URL like http://127.0.0.1:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError('expected an http:// or https:// URL like http://127.0.0.1:8080');
  return url.href.replace(/\/+$/, '');
}

function parseMac(value: string): number {
  const hex = value.trim().toLowerCase();
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/.test(hex)) throw new InvalidArgumentError('expected a MAC address like 52:54:00:00:00:01');
  return Number.parseInt(hex.replace(/[:-]/g, ''), 16);
}

function addCommonOptions(command: Command): Command {
  return command
    .requiredOption('--count <n>', `how many machines (1 to ${maxStormCount})`, parseCount)
    .option('--arrival <seconds>', 'power them on evenly over this many seconds; 0 is all at once', parseSeconds, 0)
    .option('--concurrency <n>', 'at most this many booting at the same time (default: all)', parseCount)
    .option('--deadline <seconds>', 'end the whole run after this long (default: arrival + 300)', parsePositiveSeconds);
}

function timeLine(ms: { median: number; p95: number; max: number }): string {
  return `median ${ms.median}, p95 ${ms.p95}, max ${ms.max}`;
}

function moreFailures(total: number): string {
  return total > failuresShown ? `\n… and ${total - failuresShown} more failures (--json lists them all)` : '';
}

function printPiSummary(summary: PiStormSummary): void {
  const fields: Field[] = [
    ['model', summary.model],
    ['pis', summary.count],
    ['succeeded', summary.succeeded],
    ['failed', summary.failed],
    ['first packet answered', summary.firstPacketAnswered],
    ['boot ms', timeLine(summary.bootMs)],
    ['bytes', summary.bytes],
    ['requests', summary.requests],
    ['elapsed ms', summary.elapsedMs],
  ];
  let text = renderFields(fields);
  if (summary.failures.length > 0) {
    const rows = summary.failures.slice(0, failuresShown).map((f) => [f.serial, f.file, f.error]);
    text += `\n\n${renderTable(['serial', 'file', 'error'], rows)}${moreFailures(summary.failures.length)}`;
  }
  printText(text);
}

function printPxeSummary(summary: PxeStormSummary): void {
  const fields: Field[] = [
    ['machines', summary.count],
    ['succeeded', summary.succeeded],
    ['failed', summary.failed],
    ['first request answered', summary.firstRequestAnswered],
    ['boot ms', timeLine(summary.bootMs)],
    ['bytes', summary.bytes],
    ['requests', summary.requests],
    ['elapsed ms', summary.elapsedMs],
  ];
  const outcomes = Object.entries(summary.outcomes).sort(([a], [b]) => a.localeCompare(b));
  let text = `${renderFields(fields)}\n\n${renderTable(['outcome', 'machines'], outcomes)}`;
  if (summary.failures.length > 0) {
    const rows = summary.failures.slice(0, failuresShown).map((f) => [f.mac, f.error]);
    text += `\n\n${renderTable(['mac', 'error'], rows)}${moreFailures(summary.failures.length)}`;
  }
  printText(text);
}

async function simPi(options: PiOptions, command: Command): Promise<void> {
  const serialStart = options.serialStart ?? defaultSerialStart;
  if (serialStart + options.count - 1 > maxSerial) {
    throw new MusterError(
      'bad_request',
      `${options.count} serials from ${serialStart.toString(16).padStart(8, '0')} go past ffffffff: choose a lower --serial-start`,
    );
  }
  const summary = await runPiStorm({
    host: options.host,
    port: options.tftpPort,
    count: options.count,
    model: options.model,
    arrivalSeconds: options.arrival,
    serialStart,
    concurrency: options.concurrency,
    deadlineSeconds: options.deadline,
    fileTimeoutMs: options.fileTimeout * 1000,
    distinctSources: options.sameSource ? false : undefined,
  });
  if (wantsJson(command)) printJson(summary);
  else printPiSummary(summary);
  if (summary.failed > 0) process.exitCode = 1;
}

async function simPxe(options: PxeOptions, command: Command): Promise<void> {
  const tftpHost = options.tftpHost ?? new URL(options.url).hostname.replace(/^\[|\]$/g, '');
  const summary = await runPxeStorm({
    baseUrl: options.url,
    count: options.count,
    arrivalSeconds: options.arrival,
    concurrency: options.concurrency,
    deadlineSeconds: options.deadline,
    macStart: options.macStart,
    tftp: options.tftp ? { host: tftpHost, port: options.tftpPort } : undefined,
    requestTimeoutMs: options.timeout * 1000,
    sleepScale: options.sleep ? 1 : 0,
  });
  if (wantsJson(command)) printJson(summary);
  else printPxeSummary(summary);
  if (summary.failed > 0) process.exitCode = 1;
}

/** `muster sim pi|pxe`: plays real boot sequences against a server, for tests and benchmarks. */
export function simCommand(): Command {
  const sim = new Command('sim').description('simulate machines booting against a server: Raspberry Pis over TFTP, PCs over PXE and iPXE');

  addCommonOptions(
    sim.command('pi').description('boot simulated Raspberry Pi 4s or 5s over TFTP, request for request as their bootloaders do'),
  )
    .addOption(new Option('--model <model>', 'which Pi to play').choices(['pi4', 'pi5']).default('pi4'))
    .option('--host <address>', 'TFTP server address', parseHost, '127.0.0.1')
    .option('--tftp-port <port>', 'TFTP server port', parsePort, 69)
    .option(
      '--serial-start <hex>',
      `first serial: 8 hex digits, or a whole 16-digit serial (default ${defaultSerialStart.toString(16)})`,
      parseSerial,
    )
    .option('--file-timeout <seconds>', "per-file timeout, as the bootloader's TFTP_FILE_TIMEOUT", parsePositiveSeconds, 30)
    .option('--same-source', 'send every Pi from one address instead of one 127.x.y.z address each')
    .addHelpText(
      'after',
      '\nExit codes: 0 every Pi booted, 1 some did not, 2 bad input.\n\nExamples:\n  muster sim pi --count 100 --tftp-port 6969\n  muster sim pi --count 1000 --model pi5 --arrival 60 --json',
    )
    .action(simPi);

  addCommonOptions(sim.command('pxe').description('boot simulated PCs: GET /boot.ipxe and run the iPXE scripts it leads to'))
    .requiredOption('--url <url>', 'the server iPXE asks, e.g. http://127.0.0.1:8080', parseUrl)
    .option('--tftp', 'load undionly.kpxe over TFTP first, as a PXE ROM does')
    .option('--tftp-host <address>', 'TFTP server address (default: the host of --url)', parseHost)
    .option('--tftp-port <port>', 'TFTP server port', parsePort, 69)
    .option('--mac-start <mac>', 'first MAC address; the others count up (default 52:54:00:00:00:01)', parseMac)
    .option('--timeout <seconds>', 'each download must finish by then', parsePositiveSeconds, 30)
    .option('--no-sleep', 'skip the waits of sleep and prompt --timeout')
    .addHelpText(
      'after',
      `\nExit codes: 0 every machine booted or exited to disk, 1 some failed, 2 bad input.\n\nExamples:\n  muster sim pxe --count 50 --url http://127.0.0.1:8080\n  muster sim pxe --count 10 --url http://127.0.0.1:8080 --tftp --tftp-port 6969 --json`,
    )
    .action(simPxe);

  return sim;
}
