import { TftpError, TftpErrorCode } from './types.ts';

export const Opcode = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

export interface RequestPacket {
  op: 'rrq' | 'wrq';
  filename: string;
  mode: string;
  options: Record<string, string>;
  duplicated: boolean;
}

export type Packet =
  | RequestPacket
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'data'; block: number };

function strings(buffer: Buffer, start: number): string[] {
  const parts: string[] = [];
  let from = start;
  while (from < buffer.length) {
    const end = buffer.indexOf(0, from);
    if (end < 0) throw new TftpError(TftpErrorCode.illegalOperation, 'Malformed request: a field lacks its terminating NUL');
    parts.push(buffer.toString('latin1', from, end));
    from = end + 1;
  }
  return parts;
}

/** Decodes a datagram; throws TftpError(4) for anything malformed. */
export function decode(buffer: Buffer): Packet {
  if (buffer.length < 4) throw new TftpError(TftpErrorCode.illegalOperation, 'Packet too short');
  const op = buffer.readUInt16BE(0);
  switch (op) {
    case Opcode.rrq:
    case Opcode.wrq: {
      const [filename, mode, ...rest] = strings(buffer, 2);
      if (filename === undefined || mode === undefined || rest.length % 2 !== 0) {
        throw new TftpError(TftpErrorCode.illegalOperation, 'Malformed request');
      }
      const options: Record<string, string> = {};
      let duplicated = false;
      for (let i = 0; i < rest.length; i += 2) {
        const name = rest[i].toLowerCase();
        if (Object.hasOwn(options, name)) duplicated = true;
        else options[name] = rest[i + 1];
      }
      return { op: op === Opcode.rrq ? 'rrq' : 'wrq', filename, mode: mode.toLowerCase(), options, duplicated };
    }
    case Opcode.ack:
      return { op: 'ack', block: buffer.readUInt16BE(2) };
    case Opcode.data:
      return { op: 'data', block: buffer.readUInt16BE(2) };
    case Opcode.error:
      return { op: 'error', code: buffer.readUInt16BE(2), message: buffer.toString('latin1', 4, Math.max(4, buffer.indexOf(0, 4))) };
    default:
      throw new TftpError(TftpErrorCode.illegalOperation, `Unknown opcode ${op}`);
  }
}

export function dataPacket(block: number, payload: Buffer): Buffer {
  const packet = Buffer.allocUnsafe(4 + payload.length);
  packet.writeUInt16BE(Opcode.data, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
  payload.copy(packet, 4);
  return packet;
}

export function errorPacket(code: number, message: string): Buffer {
  const text = Buffer.from(message, 'latin1');
  const packet = Buffer.alloc(5 + text.length);
  packet.writeUInt16BE(Opcode.error, 0);
  packet.writeUInt16BE(code, 2);
  text.copy(packet, 4);
  return packet;
}

export function oackPacket(options: Record<string, string>): Buffer {
  const fields = Object.entries(options).flatMap(([name, value]) => [Buffer.from(`${name}\0${value}\0`, 'latin1')]);
  const header = Buffer.alloc(2);
  header.writeUInt16BE(Opcode.oack, 0);
  return Buffer.concat([header, ...fields]);
}
