import { dataPacket, errorPacket, oackPacket, type Packet } from './packet.ts';
import { TftpErrorCode, type TftpSource } from './types.ts';

export interface TransferSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
}

/**
 * One read transfer (RFC 1350 with RFC 2347/2348/2349/7440 options). Blocks are numbered absolutely inside,
 * so the 16-bit block number may wrap. A duplicate ACK is ignored rather than answered with the next block
 * again, which is what breeds the Sorcerer's Apprentice bug; only a timeout resends.
 */
export class Transfer {
  readonly #send: (packet: Buffer) => void;
  readonly #source: TftpSource;
  readonly #settings: TransferSettings;
  readonly #oack: Record<string, string> | null;
  readonly #onEnd: () => void;
  readonly #finalBlock: number;
  #acked = 0;
  #sent = 0;
  #attempt = 0;
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<void> = Promise.resolve();
  #ended = false;
  #awaitingOackAck = false;

  constructor(
    send: (packet: Buffer) => void,
    source: TftpSource,
    settings: TransferSettings,
    oack: Record<string, string> | null,
    onEnd: () => void,
  ) {
    this.#send = send;
    this.#source = source;
    this.#settings = settings;
    this.#oack = oack;
    this.#onEnd = onEnd;
    // A file whose size is a multiple of the block size ends with an empty block.
    this.#finalBlock = Math.floor(source.size / settings.blksize) + 1;
  }

  get ended(): boolean {
    return this.#ended;
  }

  start(): void {
    if (this.#oack) {
      this.#awaitingOackAck = true;
      this.#send(oackPacket(this.#oack));
      this.#arm();
    } else {
      this.#queue(() => this.#sendWindow());
    }
  }

  receive(packet: Packet): void {
    if (this.#ended) return;
    if (packet.op === 'error') return this.end();
    if (packet.op !== 'ack') {
      this.#send(errorPacket(TftpErrorCode.illegalOperation, 'Only ACK is expected during a read'));
      return this.end();
    }
    if (this.#awaitingOackAck) {
      if (packet.block !== 0) return;
      this.#awaitingOackAck = false;
      this.#attempt = 0;
      return this.#queue(() => this.#sendWindow());
    }
    const distance = (packet.block - (this.#acked & 0xffff) + 0x10000) & 0xffff;
    const block = this.#acked + distance;
    // Duplicate (distance 0) or stale ACKs change nothing.
    if (distance === 0 || block > this.#sent) return;
    this.#acked = block;
    this.#attempt = 0;
    if (block >= this.#finalBlock) return this.end();
    // A whole window acknowledged, or part of one (RFC 7440): continue after the last block the client has.
    this.#sendNext();
  }

  #queue(step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch(() => {
      this.#send(errorPacket(TftpErrorCode.notDefined, 'Read error'));
      this.end();
    });
  }

  /** Sends the next window at once when every block of it is in memory; else through the read queue. */
  #sendNext(): void {
    const { blksize, windowsize } = this.#settings;
    const first = this.#acked + 1;
    const last = Math.min(this.#acked + windowsize, this.#finalBlock);
    const blocks: Buffer[] = [];
    for (let block = first; block <= last; block++) {
      const payload = this.#source.peek?.((block - 1) * blksize, blksize);
      if (!payload) return this.#queue(() => this.#sendWindow());
      blocks.push(payload);
    }
    for (const [i, payload] of blocks.entries()) this.#send(dataPacket(first + i, payload));
    if (last > this.#sent) this.#sent = last;
    this.#arm();
  }

  async #sendWindow(): Promise<void> {
    if (this.#ended) return;
    const { blksize, windowsize } = this.#settings;
    const first = this.#acked + 1;
    const last = Math.min(this.#acked + windowsize, this.#finalBlock);
    for (let block = first; block <= last && !this.#ended; block++) {
      const payload = await this.#source.read((block - 1) * blksize, blksize);
      if (this.#ended) return;
      this.#send(dataPacket(block, payload));
      if (block > this.#sent) this.#sent = block;
    }
    this.#arm();
  }

  /** Waits for an ACK; each silence doubles the wait, and after the last retry the transfer is given up. */
  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        if (this.#ended) return;
        if (++this.#attempt > this.#settings.retries) return this.end();
        if (this.#awaitingOackAck && this.#oack) {
          this.#send(oackPacket(this.#oack));
          this.#arm();
        } else {
          this.#queue(() => this.#sendWindow());
        }
      },
      this.#settings.timeoutMs * 2 ** this.#attempt,
    );
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer) clearTimeout(this.#timer);
    void this.#source.close?.().catch(() => {});
    this.#onEnd();
  }
}
