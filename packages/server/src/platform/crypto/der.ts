// The few DER pieces certificate issuance needs (ITU-T X.690), so that a claim signs in well under a millisecond:
// reading TLVs out of a CSR and a certificate, and writing the TBSCertificate of a device certificate.

export interface Tlv {
  tag: number;
  /** The whole element, header included. */
  raw: Buffer;
  /** The content only. */
  content: Buffer;
}

/** The element at `offset`; throws on anything truncated, indefinite or over-long. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset];
  let length = buf[offset + 1];
  let header = 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || offset + 2 + bytes > buf.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + buf[offset + 2 + i];
    header += bytes;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** The elements inside a constructed one. */
export function children(tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = 0; offset < tlv.content.length; ) {
    const child = readTlv(tlv.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

export function encode(tag: number, ...parts: Buffer[]): Buffer {
  const content = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const n = content.length;
  const header =
    n < 0x80
      ? Buffer.from([tag, n])
      : n < 0x100
        ? Buffer.from([tag, 0x81, n])
        : n < 0x10000
          ? Buffer.from([tag, 0x82, n >> 8, n & 0xff])
          : Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([header, content]);
}

export const sequence = (...parts: Buffer[]) => encode(0x30, ...parts);
export const octetString = (content: Buffer) => encode(0x04, content);
export const bitString = (content: Buffer, unused = 0) => encode(0x03, Buffer.from([unused]), content);

/** A positive INTEGER from big-endian bytes. */
export function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return encode(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return encode(0x06, Buffer.from(bytes));
}

/** The dotted form of an OBJECT IDENTIFIER's content. */
export function oidText(content: Buffer): string {
  const arcs = [Math.floor(content[0] / 40), content[0] % 40];
  let value = 0;
  for (const byte of content.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return date.getUTCFullYear() < 2050 ? encode(0x17, Buffer.from(`${iso.slice(2)}Z`)) : encode(0x18, Buffer.from(`${iso}Z`));
}
