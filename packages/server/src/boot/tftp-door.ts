import { isPiSerial, MusterError } from '@muster/contract';
import type { InFlightLimiter } from '../platform/limits/in-flight.ts';
import { sourceKey } from '../platform/limits/limiter.ts';
import type { BootRecord, BootTimeline } from './core/timeline.ts';
import type { PiBoot, PiFile } from './pi/door.ts';
import { bufferSource, fileSource } from './tftp/directory.ts';
import { TftpError, TftpErrorCode, type TftpRequest, type TftpResolver, type TftpSource } from './tftp/types.ts';

/** What the TFTP door needs of the artifact store: published names (iPXE binaries) and blob files. */
export interface PublishedFiles {
  byName(name: string): Promise<{ sha256: string; size: number } | null>;
  blobPath(sha256: string): string;
}

/** The end of a transfer as the TFTP server reports it. */
export interface TransferEnd {
  request: TftpRequest;
  bytes: number;
  durationMs: number;
  startedAt: Date;
  outcome: 'complete' | 'aborted' | 'timeout' | 'error';
  error?: string;
}

const outcomeStatus = { complete: 'ok', aborted: 'aborted', timeout: 'timeout', error: 'error' } as const;

/**
 * The TFTP front door: `<serial>/<path>` is a Raspberry Pi asking for its boot tree; any other name is a
 * published artifact (undionly.kpxe, ipxe.efi, snp.efi for PXE ROMs). Every request of a known machine
 * goes into its boot timeline when its transfer ends; a PXE ROM's fetch waits, by client address, for the
 * iPXE request that says which machine it was.
 */
export class TftpDoor {
  readonly #pi: PiBoot;
  readonly #files: PublishedFiles;
  readonly #timeline: BootTimeline;
  readonly #onError: (error: unknown) => void;
  readonly #answering: InFlightLimiter;
  readonly #pending = new WeakMap<TftpRequest, string | null>();

  /** `answering` bounds the Pi files (which may render a template) one client address waits on at once. */
  constructor(pi: PiBoot, files: PublishedFiles, timeline: BootTimeline, onError: (error: unknown) => void, answering: InFlightLimiter) {
    this.#pi = pi;
    this.#files = files;
    this.#timeline = timeline;
    this.#onError = onError;
    this.#answering = answering;
  }

  readonly resolve: TftpResolver = async (request) => {
    const slash = request.path.indexOf('/');
    const first = slash < 0 ? request.path : request.path.slice(0, slash);
    if (slash > 0 && isPiSerial(first)) return this.#piFile(request, first, request.path.slice(slash + 1));
    const published = await this.#files.byName(request.path);
    if (!published) throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
    this.#pending.set(request, null);
    return fileSource(this.#files.blobPath(published.sha256));
  };

  async #piFile(request: TftpRequest, serial: string, path: string): Promise<TftpSource> {
    const entered = this.#answering.enter(sourceKey(request.remote.address));
    if (!entered) throw new TftpError(TftpErrorCode.notDefined, 'Too many requests at once; try again');
    const leave = await entered;
    try {
      return await this.#answerPiFile(request, serial, path);
    } catch (error) {
      throw renderFailure(error) ?? error;
    } finally {
      leave();
    }
  }

  async #answerPiFile(request: TftpRequest, serial: string, path: string): Promise<TftpSource> {
    const started = performance.now();
    const { machineId, file, identification } = await this.#pi.bootFile(serial, path, request.remote.address);
    if (identification.kind === 'refused') throw new TftpError(TftpErrorCode.accessViolation, 'Refused by a rule');
    if (!machineId) throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
    if (!file) {
      this.#record(machineId, request, {
        status: 'not_found',
        bytes: 0,
        durationMs: performance.now() - started,
        error: 'File not found',
        at: new Date(),
      });
      throw new TftpError(TftpErrorCode.fileNotFound, 'File not found');
    }
    this.#pending.set(request, machineId);
    return this.#source(file);
  }

  #source(file: PiFile): Promise<TftpSource> | TftpSource {
    return 'blob' in file ? fileSource(file.blob) : bufferSource(file.bytes);
  }

  /** Called by the TFTP server once per transfer that started. */
  readonly transferEnded = (end: TransferEnd): void => {
    if (!this.#pending.has(end.request)) return;
    const machineId = this.#pending.get(end.request) ?? null;
    this.#pending.delete(end.request);
    const status = outcomeStatus[end.outcome];
    const fields = { status, bytes: end.bytes, durationMs: end.durationMs, error: end.error ?? null, at: end.startedAt };
    if (machineId) this.#record(machineId, end.request, fields);
    else this.#timeline.holdAnonymous({ door: 'tftp', client: end.request.remote.address, path: end.request.path, ...fields });
  };

  #record(machineId: string, request: TftpRequest, fields: Omit<BootRecord, 'door' | 'client' | 'path'>): void {
    const record: BootRecord = { door: 'pi', client: request.remote.address, path: request.path, ...fields };
    this.#timeline.record(machineId, record).catch(this.#onError);
  }
}

/** A template that did not render, told to a TFTP client in words that name the template's failure, never a path. */
function renderFailure(error: unknown): TftpError | null {
  if (!(error instanceof MusterError)) return null;
  if (error.code === 'render_busy') return new TftpError(TftpErrorCode.notDefined, 'Server busy; try again later');
  if (error.code === 'render_timeout') return new TftpError(TftpErrorCode.notDefined, 'The file did not render in time');
  if (error.code === 'validation_failed' || error.code === 'payload_too_large')
    return new TftpError(TftpErrorCode.notDefined, 'The file does not render');
  return null;
}
