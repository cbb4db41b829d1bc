/**
 * TFTP packets as a client builds and reads them (RFC 1350, RFC 2347): the simulated machines use it, and so do
 * the TFTP tests' raw client and fuzzer. The server's own codec (packages/server/src/boot/tftp/packet.ts) is
 * kept apart on purpose, so that an independent client still checks it.
 */
export const Opcode = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** ERROR codes a client sends or meets (RFC 1350, RFC 2347). */
export const ErrorCode = { notDefined: 0, fileNotFound: 1, unknownTransferId: 5, optionNegotiation: 8 } as const;

type Options = readonly (readonly [string, string])[];

/** Big-endian 16-bit fields, each value taken modulo 2^16. */
function u16(...values: number[]): Buffer {
  const packet = Buffer.allocUnsafe(2 * values.length);
  for (const [i, value] of values.entries()) packet.writeUInt16BE(value & 0xffff, 2 * i);
  return packet;
}

function request(opcode: number, filename: string, mode: string, options: Options): Buffer {
  const fields = [filename, mode, ...options.flat()].map((field) => `${field}\0`).join('');
  return Buffer.concat([u16(opcode), Buffer.from(fields, 'latin1')]);
}

/** A read request; options go out in the order given, as a bootloader sends them. */
export function rrqPacket(filename: string, mode: string, options: Options = []): Buffer {
  return request(Opcode.rrq, filename, mode, options);
}

export function wrqPacket(filename: string, mode: string, options: Options = []): Buffer {
  return request(Opcode.wrq, filename, mode, options);
}

export function ackPacket(block: number): Buffer {
  return u16(Opcode.ack, block);
}

export function dataPacket(block: number, payload: Buffer): Buffer {
  return Buffer.concat([u16(Opcode.data, block), payload]);
}

export function errorPacket(code: number, message: string): Buffer {
  return Buffer.concat([u16(Opcode.error, code), Buffer.from(`${message}\0`, 'latin1')]);
}

/** Any packet, as a test looks at it: OACK options in the order sent, requests and unknown opcodes raw. */
export type Packet =
  | { op: 'data'; block: number; payload: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: [string, string][] }
  | { op: 'rrq' | 'wrq' | 'other'; raw: Buffer };

function errorFields(buffer: Buffer): { code: number; message: string } {
  const end = buffer.indexOf(0, 4);
  return { code: buffer.readUInt16BE(2), message: buffer.toString('latin1', 4, end < 0 ? buffer.length : end) };
}

/** The name/value fields after the opcode; null when they do not end in a NUL or do not pair up. */
function optionFields(buffer: Buffer): [string, string][] | null {
  const fields = buffer.toString('latin1', 2).split('\0');
  if (fields.pop() !== '' || fields.length % 2 !== 0) return null;
  return Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]] as [string, string]);
}

export function parsePacket(buffer: Buffer): Packet {
  const opcode = buffer.length >= 2 ? buffer.readUInt16BE(0) : -1;
  switch (opcode) {
    case Opcode.data:
      return { op: 'data', block: buffer.readUInt16BE(2), payload: buffer.subarray(4) };
    case Opcode.ack:
      return { op: 'ack', block: buffer.readUInt16BE(2) };
    case Opcode.error:
      return { op: 'error', ...errorFields(buffer) };
    case Opcode.oack: {
      // Lenient: a test wants to see what was sent, even a trailing name without a value.
      const fields = buffer.toString('latin1', 2).split('\0');
      if (fields.at(-1) === '') fields.pop();
      const options: [string, string][] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) options.push([fields[i], fields[i + 1]]);
      return { op: 'oack', options };
    }
    case Opcode.rrq:
      return { op: 'rrq', raw: buffer };
    case Opcode.wrq:
      return { op: 'wrq', raw: buffer };
    default:
      return { op: 'other', raw: buffer };
  }
}

/** What a reader makes of a server's packet: strict, and anything else is `unexpected`, never a throw. */
export type ServerPacket =
  | { op: 'data'; block: number; payload: Buffer }
  | { op: 'oack'; options: Record<string, string> }
  | { op: 'error'; code: number; message: string }
  | { op: 'unexpected'; reason: string };

export function decodeServerPacket(buffer: Buffer): ServerPacket {
  if (buffer.length < 2) return { op: 'unexpected', reason: 'packet too short' };
  const opcode = buffer.readUInt16BE(0);
  if (opcode === Opcode.oack) {
    const fields = optionFields(buffer);
    return fields
      ? { op: 'oack', options: Object.fromEntries(fields.map(([name, value]) => [name.toLowerCase(), value])) }
      : { op: 'unexpected', reason: 'malformed OACK' };
  }
  if (buffer.length < 4) return { op: 'unexpected', reason: 'packet too short' };
  if (opcode === Opcode.data) return { op: 'data', block: buffer.readUInt16BE(2), payload: buffer.subarray(4) };
  if (opcode === Opcode.error) return { op: 'error', ...errorFields(buffer) };
  return { op: 'unexpected', reason: `opcode ${opcode}` };
}
