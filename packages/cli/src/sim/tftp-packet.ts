/** TFTP packets a reading client sends and receives (RFC 1350, RFC 2347). */
export const Opcode = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** ERROR codes a client sends or meets (RFC 1350, RFC 2347). */
export const ErrorCode = { notDefined: 0, fileNotFound: 1, unknownTransferId: 5, optionNegotiation: 8 } as const;

export type ServerPacket =
  | { op: 'data'; block: number; payload: Buffer }
  | { op: 'oack'; options: Record<string, string> }
  | { op: 'error'; code: number; message: string }
  | { op: 'unexpected'; reason: string };

function u16(opcode: number, value: number): Buffer {
  const packet = Buffer.allocUnsafe(4);
  packet.writeUInt16BE(opcode, 0);
  packet.writeUInt16BE(value & 0xffff, 2);
  return packet;
}

/** A read request; options go out in the order given, as a bootloader sends them. */
export function rrqPacket(filename: string, mode: string, options: readonly (readonly [string, string])[]): Buffer {
  const fields = [filename, mode, ...options.flat()].map((field) => `${field}\0`).join('');
  const header = Buffer.from([0, Opcode.rrq]);
  return Buffer.concat([header, Buffer.from(fields, 'latin1')]);
}

export function ackPacket(block: number): Buffer {
  return u16(Opcode.ack, block);
}

export function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([u16(Opcode.error, code), Buffer.from(`${message}\0`, 'latin1')]);
}

function oackOptions(buffer: Buffer): Record<string, string> | null {
  const fields = buffer.toString('latin1', 2).split('\0');
  if (fields.pop() !== '' || fields.length % 2 !== 0) return null;
  const options: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) options[fields[i].toLowerCase()] = fields[i + 1];
  return options;
}

/** Decodes what a server sends to a reader; anything else is `unexpected`, never a throw. */
export function decodeServerPacket(buffer: Buffer): ServerPacket {
  if (buffer.length < 2) return { op: 'unexpected', reason: 'packet too short' };
  const opcode = buffer.readUInt16BE(0);
  if (opcode === Opcode.oack) {
    const options = oackOptions(buffer);
    return options ? { op: 'oack', options } : { op: 'unexpected', reason: 'malformed OACK' };
  }
  if (buffer.length < 4) return { op: 'unexpected', reason: 'packet too short' };
  if (opcode === Opcode.data) return { op: 'data', block: buffer.readUInt16BE(2), payload: buffer.subarray(4) };
  if (opcode === Opcode.error) {
    const end = buffer.indexOf(0, 4);
    return { op: 'error', code: buffer.readUInt16BE(2), message: buffer.toString('latin1', 4, end < 0 ? buffer.length : end) };
  }
  return { op: 'unexpected', reason: `opcode ${opcode}` };
}
