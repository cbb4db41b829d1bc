import { maxStormCount, runArrivals, timeSummary } from './arrivals.ts';
import { type FetchedImage, type IpxeHost, type IpxeOutcome, runIpxe } from './ipxe-script.ts';
import type { PxeIdentity } from './ipxe-settings.ts';
import { tftpGet } from './tftp-client.ts';

export interface SimulatePxeOptions extends PxeIdentity {
  /** Where iPXE finds its first script: GET `<baseUrl>/boot.ipxe`. */
  baseUrl: string;
  /** Load `undionly.kpxe` over TFTP first, as a PXE ROM does before iPXE runs. */
  tftp?: { host: string; port: number; filename?: string };
  /** Each download must finish by then (default 30 s). */
  requestTimeoutMs?: number;
  /** `sleep` and `prompt --timeout` last this fraction of their time (default 1, 0 skips them). */
  sleepScale?: number;
  signal?: AbortSignal;
}

export interface PxeRequest {
  url: string;
  /** HTTP status; null for TFTP or when no answer came. */
  status: number | null;
  bytes: number;
  ms: number;
  error: string | null;
}

export interface PxeBootResult {
  mac: string;
  /** The machine left iPXE the way a script can end: booted an image, exit, sanboot, reboot; not an error. */
  success: boolean;
  outcome: IpxeOutcome;
  /** One line: `booted http://…/vmlinuz`, `exit`, `error: …`. */
  summary: string;
  bootMs: number;
  /** The first request was answered (HTTP 2xx, or TFTP data) rather than refused or ignored. */
  firstRequestAnswered: boolean;
  bytes: number;
  requests: PxeRequest[];
  /** What `echo` printed. */
  console: string[];
}

const maxScriptBytes = 1024 * 1024;
const userAgent = 'iPXE/1.21.1 (muster sim)';

function causeMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'timed out';
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}

/** Downloads over HTTP as iPXE does: a script is kept, other images are counted; the length must match Content-Length. */
async function httpImage(url: URL, timeoutMs: number, signal: AbortSignal | undefined, record: PxeRequest): Promise<FetchedImage> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  const response = await fetch(url, { signal: AbortSignal.any(signals), headers: { 'user-agent': userAgent } });
  record.status = response.status;
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const declared = response.headers.get('content-length');
  const textual = /^text\//i.test(response.headers.get('content-type') ?? '');
  const kept: Uint8Array[] = [];
  let script: boolean | null = null;
  for await (const chunk of response.body) {
    record.bytes += chunk.length;
    if (script === null || script) kept.push(chunk);
    if (script === null && (record.bytes >= 6 || textual)) {
      script = textual || /^#!(ipxe|gpxe)/.test(Buffer.concat(kept).toString('latin1', 0, 6));
      if (!script) kept.length = 0;
    }
    if (script && record.bytes > maxScriptBytes) throw new Error(`a script larger than ${maxScriptBytes} bytes`);
  }
  if (declared !== null && Number(declared) !== record.bytes)
    throw new Error(`received ${record.bytes} bytes, Content-Length said ${declared}`);
  const text = Buffer.concat(kept).toString('utf8');
  // Text that is not a script would not boot either: iPXE reports it as an unknown image format.
  return script || textual || /^#!(ipxe|gpxe)/.test(text) ? { kind: 'script', text } : { kind: 'binary', bytes: record.bytes };
}

function describeOutcome(outcome: IpxeOutcome): string {
  switch (outcome.kind) {
    case 'booted':
      return `booted ${outcome.image}`;
    case 'exit':
      return outcome.code === 0 ? 'exit' : `exit ${outcome.code}`;
    case 'sanboot':
      return `sanboot ${outcome.args}`.trim();
    case 'error':
      return `error: ${outcome.error}`;
    default:
      return outcome.kind;
  }
}

/** A PXE ROM's TFTP load of iPXE: a size probe (ended after the OACK), then the file in 1456-byte blocks. */
async function loadUndionly(options: SimulatePxeOptions, requests: PxeRequest[]): Promise<string | null> {
  const tftp = options.tftp;
  if (!tftp) return null;
  const filename = tftp.filename ?? 'undionly.kpxe';
  const url = `tftp://${tftp.host}:${tftp.port}/${filename}`;
  const common = {
    host: tftp.host,
    port: tftp.port,
    filename,
    tsize: true,
    signal: options.signal,
    fileTimeoutMs: options.requestTimeoutMs,
  };
  for (const attempt of [{ abort: 'oack' as const }, { blksize: 1456 }]) {
    const result = await tftpGet({ ...common, ...attempt });
    const error = result.ok
      ? null
      : result.error?.from === 'server'
        ? `ERROR ${result.error.code} ${result.error.message}`
        : result.error?.message;
    requests.push({ url, status: null, bytes: result.bytes, ms: Math.round(result.ms), error: error ?? null });
    if (error) return `tftp ${url}: ${error}`;
  }
  return null;
}

/** Boots one simulated PC: optionally iPXE over TFTP, then `<baseUrl>/boot.ipxe` and whatever it chains to. */
export async function simulatePxe(options: SimulatePxeOptions): Promise<PxeBootResult> {
  const started = performance.now();
  const requests: PxeRequest[] = [];
  const printed: string[] = [];
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const scale = options.sleepScale ?? 1;
  const host: IpxeHost = {
    async fetch(url) {
      const record: PxeRequest = { url: url.href, status: null, bytes: 0, ms: 0, error: null };
      requests.push(record);
      const begun = performance.now();
      try {
        return await httpImage(url, timeoutMs, options.signal, record);
      } catch (error) {
        record.error = causeMessage(error);
        throw new Error(record.error);
      } finally {
        record.ms = Math.round(performance.now() - begun);
      }
    },
    sleep: (ms) => sleep(ms * scale, options.signal),
    echo: (text) => void printed.push(text),
  };
  const tftpError = await loadUndionly(options, requests);
  const outcome: IpxeOutcome = tftpError
    ? { kind: 'error', error: tftpError }
    : await runIpxe(`${options.baseUrl.replace(/\/+$/, '')}/boot.ipxe`, options, host);
  const first = requests[0];
  return {
    mac: options.mac,
    success: outcome.kind !== 'error',
    outcome,
    summary: describeOutcome(outcome),
    bootMs: performance.now() - started,
    firstRequestAnswered: first !== undefined && first.error === null,
    bytes: requests.reduce((sum, request) => sum + request.bytes, 0),
    requests,
    console: printed,
  };
}

/** A wait that ends early when the signal aborts (the next download then fails at once). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface PxeStormOptions {
  baseUrl: string;
  count: number;
  arrivalSeconds?: number;
  concurrency?: number;
  deadlineSeconds?: number;
  /** The first machine's MAC as a number; the others count up (default 52:54:00:00:00:01). */
  macStart?: number;
  tftp?: { host: string; port: number; filename?: string };
  requestTimeoutMs?: number;
  sleepScale?: number;
  keepResults?: boolean;
}

export interface PxeStormSummary {
  count: number;
  succeeded: number;
  failed: number;
  firstRequestAnswered: number;
  /** How many machines ended each way, by summary line. */
  outcomes: Record<string, number>;
  bootMs: { median: number; p95: number; max: number };
  bytes: number;
  requests: number;
  elapsedMs: number;
  failures: { mac: string; error: string }[];
  machines?: PxeBootResult[];
}

export const defaultMacStart = 0x525400000001;

function macAt(value: number): string {
  return value.toString(16).padStart(12, '0').match(/../g)!.join(':');
}

/** The identity of simulated PC number `index`: a QEMU-style MAC, a UUID and a serial derived from it. */
export function pxeIdentity(index: number, macStart = defaultMacStart): PxeIdentity {
  const mac = macAt(macStart + index);
  const hex = mac.replaceAll(':', '');
  return {
    mac,
    uuid: `5a5a0000-0000-4000-8000-${hex}`,
    serial: `SIM${hex.slice(6).toUpperCase()}`,
    asset: `asset-${index + 1}`,
    manufacturer: 'QEMU',
    product: 'Standard PC (i440FX + PIIX, 1996)',
    buildarch: 'x86_64',
    platform: 'pcbios',
  };
}

function failedMachine(identity: PxeIdentity, error: string): PxeBootResult {
  const outcome: IpxeOutcome = { kind: 'error', error };
  return {
    mac: identity.mac,
    success: false,
    outcome,
    summary: describeOutcome(outcome),
    bootMs: 0,
    firstRequestAnswered: false,
    bytes: 0,
    requests: [],
    console: [],
  };
}

/** Boots `count` simulated PCs against one server and sums up how it went. */
export async function runPxeStorm(options: PxeStormOptions): Promise<PxeStormSummary> {
  const { count } = options;
  if (!Number.isInteger(count) || count < 1 || count > maxStormCount) throw new RangeError(`count must be 1 to ${maxStormCount}`);
  const arrivalMs = (options.arrivalSeconds ?? 0) * 1000;
  const identities = Array.from({ length: count }, (_, index) => pxeIdentity(index, options.macStart));
  const began = performance.now();
  const results = await runArrivals(
    {
      count,
      arrivalMs,
      concurrency: options.concurrency ?? count,
      deadlineMs: (options.deadlineSeconds ?? arrivalMs / 1000 + 300) * 1000,
    },
    (index, signal) =>
      simulatePxe({
        ...identities[index],
        baseUrl: options.baseUrl,
        tftp: options.tftp,
        requestTimeoutMs: options.requestTimeoutMs,
        sleepScale: options.sleepScale,
        signal,
      }),
    {
      notStarted: (index) => failedMachine(identities[index], 'not started before the storm deadline'),
      crashed: (index, error) => failedMachine(identities[index], error instanceof Error ? error.message : String(error)),
    },
  );
  const outcomes: Record<string, number> = {};
  for (const result of results) outcomes[result.summary] = (outcomes[result.summary] ?? 0) + 1;
  const succeeded = results.filter((result) => result.success);
  const summary: PxeStormSummary = {
    count,
    succeeded: succeeded.length,
    failed: count - succeeded.length,
    firstRequestAnswered: results.filter((result) => result.firstRequestAnswered).length,
    outcomes,
    bootMs: timeSummary(succeeded.map((result) => result.bootMs)),
    bytes: results.reduce((sum, result) => sum + result.bytes, 0),
    requests: results.reduce((sum, result) => sum + result.requests.length, 0),
    elapsedMs: Math.round(performance.now() - began),
    failures: results.filter((result) => !result.success).map((result) => ({ mac: result.mac, error: result.summary })),
  };
  if (options.keepResults) summary.machines = results;
  return summary;
}
