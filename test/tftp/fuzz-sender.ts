/**
 * The datagram fuzzer of fuzz.test.ts, run as its own process so that the test process's memory and file
 * descriptors are the server's alone. Usage: node test/tftp/fuzz-sender.ts PORT SEED COUNT TIME_BOUND_MS
 * Prints one JSON line: { sent, elapsedMs, replies, replyKinds }. Sends only to 127.0.0.1.
 * Without arguments (e.g. picked up by a bare `node --test`) it does nothing.
 */
import dgram from 'node:dgram';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ackPacket, dataPacket, errorPacket, rrqPacket, wrqPacket } from '@muster/sim/tftp-packet.ts';

const SOCKETS = 4;
const BATCH = 250;
const HOST = '127.0.0.1';

/** Seeded generator (mulberry32): a failure reproduces with the same datagrams. */
function rng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, pick, bytes };
}

const names = [
  'big.bin',
  'exact512.bin',
  'exact1024.bin',
  'empty.bin',
  'text.txt',
  'aa112233/config.txt',
  'aa112233//config.txt',
  'rollover.bin',
  'missing.bin',
  '../x',
  '/../../etc/passwd',
  '..\\..\\x',
  'escape.txt',
  'aa112233',
  '',
  'x'.repeat(600),
];
const modes = ['octet', 'netascii', 'OCTET', 'mail', '', 'octet\u00ff'];
const optionNames = ['blksize', 'tsize', 'timeout', 'windowsize', 'BLKSIZE', 'multicast', 'rollover', 'x-junk', ''];
const optionValues = [
  '0',
  '7',
  '8',
  '512',
  '1468',
  '65464',
  '65465',
  '70000',
  '256',
  '-1',
  '99999999999999999999',
  'abc',
  '',
  ' 512',
  '0x200',
];
/**
 * Only invalid timeout values: a valid one (1..255 s) would rightly keep an abandoned transfer alive for up to
 * 255 s × 3, longer than the drain check waits. protocol.test.ts covers valid timeouts.
 */
const timeoutValues = ['0', '256', '-1', '99999999999999999999', 'abc', '', '1.5', '0x1'];

const build = {
  request: (opcode: 1 | 2, name: string, mode: string, options: [string, string][]) =>
    (opcode === 1 ? rrqPacket : wrqPacket)(name, mode, options),
  ack: ackPacket,
  error: errorPacket,
  data: dataPacket,
};

export function generator(seed: number) {
  const r = rng(seed);

  function options(count: number): [string, string][] {
    return Array.from({ length: count }, () => {
      const name = r.pick(optionNames);
      return [name, r.pick(name === 'timeout' ? timeoutValues : optionValues)] as [string, string];
    });
  }

  function valid(): Buffer {
    switch (r.int(7)) {
      case 0:
      case 1:
        return build.request(1, r.pick(names), r.pick(modes), options(r.int(5)));
      case 2:
        return build.request(2, r.pick(names), r.pick(modes), options(r.int(3)));
      case 3:
        return build.ack(r.int(70_000));
      case 4:
        return build.error(r.int(10), 'fuzz');
      case 5:
        return build.data(r.int(65536), r.bytes(r.int(600)));
      default: // an OACK, which only a server sends
        return Buffer.concat([Buffer.from([0, 6]), Buffer.from(options(r.int(4)).flat().join('\0'), 'latin1')]);
    }
  }

  function withOpcode(b: Buffer, opcode: number): Buffer {
    const c = Buffer.alloc(Math.max(2, b.length));
    b.copy(c);
    c.writeUInt16BE(opcode & 0xffff, 0);
    return c;
  }

  function mutate(b: Buffer): Buffer {
    switch (r.int(9)) {
      case 0: // truncation
        return b.subarray(0, r.int(b.length + 1));
      case 1: {
        // random bytes overwritten
        const c = Buffer.from(b);
        for (let i = 0, n = 1 + r.int(4); i < n && c.length; i++) c[r.int(c.length)] = r.int(256);
        return c;
      }
      case 2: // opcode 0 or 7..65535
        return withOpcode(b, r.next() < 0.3 ? 0 : 7 + r.int(65529));
      case 3: // huge option list
        return build.request(1, r.pick(names), 'octet', options(200 + r.int(2000)));
      case 4: // every NUL removed
        return Buffer.from(b.filter((x) => x !== 0));
      case 5: // junk appended
        return Buffer.concat([b, r.bytes(r.int(100))]);
      case 6: // random bytes, rarely near the largest datagram
        return r.bytes(r.int(r.next() < 0.01 ? 65_000 : 1500));
      case 7: // a very long name
        return build.request(1, 'a/'.repeat(r.int(20_000)), 'octet', []);
      default:
        return b;
    }
  }

  return { next: () => (r.next() < 0.2 ? valid() : mutate(valid())), r };
}

async function main(port: number, seed: number, count: number, boundMs: number) {
  const { next } = generator(seed);
  // Replies arrive in a timing-dependent order: they draw from their own generator, so the datagrams the
  // main generator makes are the same on every run.
  const playAlong = generator(seed ^ 0xacc);
  const p = playAlong.r;
  const transferPorts: number[] = [];
  const replyKinds: Record<string, number> = {};
  let replies = 0;
  const sockets = await Promise.all(
    Array.from({ length: SOCKETS }, async () => {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
      await new Promise<void>((resolve) => s.bind(0, HOST, () => resolve()));
      s.on('error', () => {});
      s.on('message', (msg, rinfo) => {
        replies++;
        const kind =
          msg.length < 2 ? 'short' : msg[1] === 5 && msg.length >= 4 ? `error ${msg.readUInt16BE(2)}` : `op ${msg.readUInt16BE(0)}`;
        replyKinds[kind] = (replyKinds[kind] ?? 0) + 1;
        if (rinfo.port !== port) {
          if (transferPorts.length < 64 && !transferPorts.includes(rinfo.port)) transferPorts.push(rinfo.port);
          else if (p.next() < 0.05) transferPorts[p.int(transferPorts.length)] = rinfo.port;
        }
        // Often play along (ACK the DATA or OACK), so transfers move on and meet mutated packets in every state.
        if (msg.length >= 4 && msg[0] === 0 && (msg[1] === 3 || msg[1] === 6) && p.next() < 0.5) {
          const block = msg[1] === 6 ? 0 : msg.readUInt16BE(2);
          s.send(p.next() < 0.8 ? build.ack(block) : playAlong.next(), rinfo.port, HOST);
        }
      });
      return s;
    }),
  );
  const started = Date.now();
  let sent = 0;
  while (sent < count && Date.now() - started < boundMs) {
    const pending: Promise<void>[] = [];
    for (let i = 0; i < BATCH && sent < count; i++, sent++) {
      const datagram = next();
      const target = transferPorts.length && p.next() < 0.15 ? p.pick(transferPorts) : port;
      pending.push(new Promise((resolve) => sockets[sent % SOCKETS].send(datagram, target, HOST, () => resolve())));
    }
    await Promise.all(pending);
    await yieldToEventLoop();
  }
  const elapsedMs = Date.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const s of sockets) s.close();
  process.stdout.write(`${JSON.stringify({ sent, elapsedMs, replies, replyKinds })}\n`);
}

const [port, seed, count, boundMs] = process.argv.slice(2).map(Number);
if (port > 0) await main(port, seed, count, boundMs);
