import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { negotiate } from './options.ts';
import { decode, errorPacket, type RequestPacket } from './packet.ts';
import { safePath } from './path.ts';
import { Transfer, type TransferSettings } from './transfer.ts';
import { TftpError, TftpErrorCode, type TftpRemote, type TftpResolver, type TftpSource } from './types.ts';

export interface TftpServerOptions {
  host: string;
  port: number;
  resolve: TftpResolver;
  /** Answer every transfer from the listening port (for firewalls) instead of a new port per transfer. */
  singlePort?: boolean;
  maxTransfers?: number;
  maxPerClient?: number;
  timeoutMs?: number;
  retries?: number;
  /** Told of failures that are the server's, not the client's. */
  onError?: (error: unknown) => void;
}

const maxNetasciiBytes = 16 * 1024 * 1024;
// RFC 2347: a request packet is at most 512 octets; larger ones are refused before their options are read.
const maxRequestBytes = 512;

/** netascii (RFC 764): LF becomes CR LF and a lone CR becomes CR NUL. */
async function netascii(source: TftpSource): Promise<TftpSource> {
  if (source.size > maxNetasciiBytes) throw new TftpError(TftpErrorCode.notDefined, 'File too large for netascii mode; use octet');
  const raw = await source.read(0, source.size);
  await source.close?.();
  // RFC 764: every CR goes as CR NUL and every LF as CR LF, so a CR LF in the file survives the trip.
  const text = raw.toString('latin1').replace(/\r/g, '\r\0').replace(/\n/g, '\r\n');
  const converted = Buffer.from(text, 'latin1');
  return { size: converted.length, read: async (offset, length) => converted.subarray(offset, offset + length) };
}

/** A read-only TFTP server: it serves whatever `resolve` returns and knows nothing of files or machines. */
export class TftpServer {
  readonly #o: Required<Omit<TftpServerOptions, 'onError'>> & Pick<TftpServerOptions, 'onError'>;
  /** Running transfers and requests still being resolved, by client address and port: one at a time each. */
  readonly #transfers = new Map<string, { transfer: Transfer | null }>();
  readonly #perClient = new Map<string, number>();
  #socket: Socket | null = null;

  constructor(options: TftpServerOptions) {
    this.#o = { singlePort: false, maxTransfers: 1000, maxPerClient: 64, timeoutMs: 1000, retries: 5, ...options };
  }

  get activeTransfers(): number {
    return this.#transfers.size;
  }

  /** Takes a slot before the request is resolved, so that requests arriving together cannot pass the limits. */
  #reserve(key: string, address: string): void {
    if (this.#transfers.size >= this.#o.maxTransfers || (this.#perClient.get(address) ?? 0) >= this.#o.maxPerClient) {
      throw new TftpError(TftpErrorCode.notDefined, 'Server busy; try again later');
    }
    this.#transfers.set(key, { transfer: null });
    this.#perClient.set(address, (this.#perClient.get(address) ?? 0) + 1);
  }

  #release(key: string, address: string): void {
    if (!this.#transfers.delete(key)) return;
    const left = (this.#perClient.get(address) ?? 1) - 1;
    if (left > 0) this.#perClient.set(address, left);
    else this.#perClient.delete(address);
  }

  #type(): 'udp4' | 'udp6' {
    return isIPv6(this.#o.host) ? 'udp6' : 'udp4';
  }

  async start(): Promise<{ address: string; port: number }> {
    const socket = createSocket({ type: this.#type(), ipv6Only: false });
    socket.on('message', (message, remote) => this.#onListenerMessage(socket, message, remote));
    socket.on('error', (error) => this.#o.onError?.(error));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#o.port, this.#o.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.#socket = socket;
    const { address, port } = socket.address();
    return { address, port };
  }

  async stop(): Promise<void> {
    for (const { transfer } of [...this.#transfers.values()]) transfer?.end();
    const socket = this.#socket;
    this.#socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  #onListenerMessage(socket: Socket, message: Buffer, remote: RemoteInfo): void {
    const key = `${remote.address}|${remote.port}`;
    const running = this.#transfers.get(key);
    if (message.length > maxRequestBytes && !running) {
      return this.#refuse(socket, remote, new TftpError(TftpErrorCode.illegalOperation, 'Request larger than 512 bytes'));
    }
    let packet: ReturnType<typeof decode>;
    try {
      packet = decode(message);
    } catch (error) {
      if (running) {
        if (this.#o.singlePort) running.transfer?.receive({ op: 'error', code: 0, message: '' });
        return;
      }
      return this.#refuse(socket, remote, error);
    }
    if (running) {
      // A repeated request (bootloaders retransmit them) belongs to the transfer already under way.
      if (this.#o.singlePort && packet.op !== 'rrq' && packet.op !== 'wrq') running.transfer?.receive(packet);
      return;
    }
    if (packet.op === 'wrq') return this.#refuse(socket, remote, new TftpError(TftpErrorCode.accessViolation, 'Writes are not supported'));
    // Stray ACK, DATA or ERROR packets at the listening port belong to no transfer: no answer.
    if (packet.op !== 'rrq') return;
    try {
      this.#reserve(key, remote.address);
    } catch (error) {
      return this.#refuse(socket, remote, error);
    }
    void this.#startTransfer(socket, remote, packet).catch((error) => {
      this.#release(key, remote.address);
      this.#refuse(socket, remote, error);
    });
  }

  #refuse(socket: Socket, remote: RemoteInfo, error: unknown): void {
    const known = error instanceof TftpError;
    if (!known) this.#o.onError?.(error);
    const code = known ? error.code : TftpErrorCode.notDefined;
    const message = known ? error.message : 'Internal error';
    socket.send(errorPacket(code, message), remote.port, remote.address, () => {});
  }

  async #startTransfer(listener: Socket, remote: RemoteInfo, packet: RequestPacket): Promise<void> {
    if (packet.mode !== 'octet' && packet.mode !== 'netascii')
      throw new TftpError(TftpErrorCode.illegalOperation, `Mode ${packet.mode} is not supported`);
    const from: TftpRemote = { address: remote.address, port: remote.port, family: remote.family as TftpRemote['family'] };
    const path = safePath(packet.filename);
    let source = await this.#o.resolve({ filename: packet.filename, path, mode: packet.mode, options: packet.options, remote: from });
    try {
      if (packet.mode === 'netascii') source = await netascii(source);
      const { settings, oack } = negotiate(packet.options, source.size, this.#o);
      this.#begin(listener, remote, source, settings, oack);
    } catch (error) {
      await source.close?.();
      throw error;
    }
  }

  #begin(listener: Socket, remote: RemoteInfo, source: TftpSource, settings: TransferSettings, oack: Record<string, string> | null): void {
    const key = `${remote.address}|${remote.port}`;
    const socket = this.#o.singlePort ? listener : createSocket({ type: this.#type(), ipv6Only: false });
    const send = (packet: Buffer) => socket.send(packet, remote.port, remote.address);
    const transfer = new Transfer(send, source, settings, oack, () => {
      this.#release(key, remote.address);
      if (socket !== listener) socket.close();
    });
    this.#transfers.set(key, { transfer });
    if (socket === listener) return transfer.start();
    socket.on('error', (error) => {
      this.#o.onError?.(error);
      transfer.end();
    });
    socket.on('message', (message, sender) => {
      if (sender.address !== remote.address || sender.port !== remote.port) {
        socket.send(errorPacket(TftpErrorCode.unknownTransferId, 'Unknown transfer ID'), sender.port, sender.address, () => {});
        return;
      }
      try {
        transfer.receive(decode(message));
      } catch {
        send(errorPacket(TftpErrorCode.illegalOperation, 'Malformed packet'));
        transfer.end();
      }
    });
    socket.bind(0, this.#o.host, () => transfer.start());
  }
}
