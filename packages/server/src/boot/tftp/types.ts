/**
 * A source's serializable form: a file by its path, or bytes in memory. A source that has one can be served from a
 * worker thread; any other source is served from the main thread.
 */
export type TftpTransferable = { path: string } | { bytes: Uint8Array };

/** What a transfer reads from: the boot resolver's answer, a file or a rendered template. */
export interface TftpSource {
  /** Size in bytes (sent as tsize). */
  size: number;
  /** Reads up to `length` bytes at `offset`; fewer only at the end. Random access serves retransmissions. */
  read(offset: number, length: number): Promise<Buffer>;
  /** The same bytes when they are already in memory (read ahead), else null: spares the hot path a promise. */
  peek?(offset: number, length: number): Buffer | null;
  close?(): Promise<void>;
  /** Set by fileSource and bufferSource: the same bytes in a form a worker thread can open again. */
  transferable?: TftpTransferable;
}

export interface TftpRemote {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export interface TftpRequest {
  /** The name exactly as the client sent it. */
  filename: string;
  /** The name made safe: relative, '/'-separated, no '.', '..' or empty segments (see path.ts). */
  path: string;
  mode: 'octet' | 'netascii';
  /** Options the client asked for, lower-cased names. */
  options: Record<string, string>;
  remote: TftpRemote;
}

/** TFTP error codes (RFC 1350, RFC 2347). */
export const TftpErrorCode = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionNegotiation: 8,
} as const;

/** An error the client is told about, in an ERROR packet. Its message never names a server path. */
export class TftpError extends Error {
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.name = 'TftpError';
    this.code = code;
  }
}

export type TftpResolver = (request: TftpRequest) => Promise<TftpSource>;

/** How a transfer ended: the last block acknowledged, an ERROR from the client, the client gone silent, or a failure. */
export type TftpOutcome = 'complete' | 'aborted' | 'timeout' | 'error';

/** Told once for every transfer whose request the resolver answered (TftpServerOptions.onTransferEnd). */
export interface TftpTransferReport {
  request: TftpRequest;
  /** The size served (after netascii conversion). */
  size: number;
  /** File bytes the client acknowledged. */
  bytes: number;
  blksize: number;
  windowsize: number;
  startedAt: Date;
  durationMs: number;
  outcome: TftpOutcome;
  /** The client's error message (aborted), or ours (timeout, error). */
  error?: string;
}
