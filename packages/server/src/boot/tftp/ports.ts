import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { BlockCache, type BlockReader } from './blocks.ts';
import { decode, errorPacket, Opcode, type Packet } from './packet.ts';
import { Transfer, type TransferEnd, type TransferOrder, type TransferSettings } from './transfer.ts';
import { TftpErrorCode, type TftpRemote } from './types.ts';

/** Everything a transfer needs besides its bytes; plain data, so it can be posted to a worker thread. */
export interface TransferJob {
  /** The address the listener is bound to (an IP address); a transfer's own port is bound there too. */
  host: string;
  remote: TftpRemote;
  size: number;
  settings: TransferSettings;
  oack: Record<string, string> | null;
  order: TransferOrder;
}

export function socketType(host: string): 'udp4' | 'udp6' {
  return isIPv6(host) ? 'udp6' : 'udp4';
}

/** dgram resolves a name before binding and connecting; a transfer only ever uses IP addresses, taken as they are. */
function literal(address: string, family: number, callback: (error: null, address: string, family: number) => void): void {
  callback(null, address, family);
}

/**
 * Runs a transfer from a socket of its own (RFC 1350: a new TID per transfer), on whatever thread calls it: the
 * main thread or a worker. The socket is connected to the client, as tftpd-hpa's are: a send needs no address and
 * no route lookup, and the kernel keeps other senders' packets out (they get ICMP port unreachable, not ERROR 5).
 * The socket is closed before `onEnd`.
 */
const clientGone = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

export function runOnOwnPort(
  job: TransferJob,
  reader: BlockReader,
  onEnd: (end: TransferEnd) => void,
  onError: (error: unknown) => void,
  onHeard?: () => void,
): Transfer {
  const socket = createSocket({ type: socketType(job.host), ipv6Only: false, lookup: literal as never });
  const send = (packet: Buffer) => socket.send(packet);
  const blocks = new BlockCache(reader, job.size, job.settings.blksize, () => socket.getSendQueueCount() === 0);
  const transfer = new Transfer(
    send,
    blocks,
    job.size,
    job.settings,
    job.oack,
    (end) => {
      socket.close();
      onEnd(end);
    },
    onHeard,
    job.order,
  );
  socket.on('error', (error: NodeJS.ErrnoException) => {
    // ICMP unreachable for the client's port: the client went away (or never was), which is no server error.
    if (error.code && clientGone.has(error.code)) return transfer.end('aborted', `the client's port is unreachable (${error.code})`);
    onError(error);
    transfer.end('error', error.message);
  });
  let connected = false;
  socket.on('message', (message) => {
    // Between bind and connect a stranger's packet could still arrive: it has nobody to answer to.
    if (!connected) return;
    // Nearly every packet is an ACK: 4 bytes, opcode 4, read without decoding.
    if (message.length === 4 && message[0] === 0 && message[1] === Opcode.ack) return transfer.ack(message.readUInt16BE(2));
    let packet: Packet;
    try {
      packet = decode(message);
    } catch {
      if (transfer.ended) return;
      send(errorPacket(TftpErrorCode.illegalOperation, 'Malformed packet'));
      return transfer.end('error', 'malformed packet from the client');
    }
    transfer.receive(packet);
  });
  socket.bind(0, job.host, () =>
    socket.connect(job.remote.port, job.remote.address, () => {
      connected = true;
      transfer.start();
    }),
  );
  return transfer;
}

/** Runs a transfer from the listening socket (singlePort); the listener hands it the client's packets. */
export function runOnListener(
  listener: Socket,
  job: TransferJob,
  reader: BlockReader,
  onEnd: (end: TransferEnd) => void,
  onHeard?: () => void,
): Transfer {
  const { remote } = job;
  const send = (packet: Buffer) => listener.send(packet, remote.port, remote.address);
  const blocks = new BlockCache(reader, job.size, job.settings.blksize, () => listener.getSendQueueCount() === 0);
  const transfer = new Transfer(send, blocks, job.size, job.settings, job.oack, onEnd, onHeard, job.order);
  transfer.start();
  return transfer;
}
