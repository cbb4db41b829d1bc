import type { BlockCache } from './blocks.ts';
import { clock, processTime } from './clock.ts';
import { errorPacket, oackPacket, type Packet } from './packet.ts';
import { type Admissible, admittedFromBytes, scheduler } from './schedule.ts';
import { TftpErrorCode, type TftpOutcome } from './types.ts';

export interface TransferSettings {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /**
   * Retries for a transfer the client has not acknowledged yet. Until then the client's address is unproven (a
   * flood of requests needs no replies and may be spoofed), so its slot is given up sooner.
   */
  unconfirmedRetries: number;
  /** Poll this long after an ACK when the client's round trip is shorter (see clock.pollUntil); 0: never. */
  busyPollMs: number;
  /**
   * How long the client waits for a whole file before it gives up (the Pi bootloader's 30 s), or null: no limit.
   * With a limit, a large transfer waits past its first window to be admitted (schedule.ts), and a transfer whose
   * client's time has run out ends at its next silence instead of sending again.
   */
  fileLimitMs: number | null;
}

/** Where a transfer stands among others: when its request came and when its client's boot began (processTime). */
export interface TransferOrder {
  requestedAt: number;
  rank: number;
}

/** How a transfer ended, as far as the transfer itself knows. */
export interface TransferEnd {
  outcome: TftpOutcome;
  error?: string;
  /** File bytes the client acknowledged. */
  bytes: number;
  /** When the transfer last sent something, as a processTime() that compares across threads (see server.ts). */
  lastSentAt: number;
}

/**
 * One read transfer (RFC 1350 with RFC 2347/2348/2349/7440 options). Blocks are numbered absolutely inside,
 * so the 16-bit block number may wrap. A duplicate ACK is ignored rather than answered with the next block
 * again, which is what breeds the Sorcerer's Apprentice bug; only a timeout resends.
 */
export class Transfer implements Admissible {
  /** When to retransmit (performance.now() time); the thread's clock looks at it. */
  deadline = Number.POSITIVE_INFINITY;
  /** Settles once the transfer has ended and closed its file. */
  closed: Promise<void> | null = null;
  readonly #send: (packet: Buffer) => void;
  readonly #blocks: BlockCache;
  readonly #size: number;
  readonly #settings: TransferSettings;
  readonly #oack: Record<string, string> | null;
  readonly #onEnd: (end: TransferEnd) => void;
  #acked = 0;
  #sent = 0;
  /** performance.now() of the last window (or OACK) sent. */
  #sentAt = 0;
  /** The client's round trip (send to ACK), smoothed; starts high, so that polling is earned. */
  #roundTrip = Number.POSITIVE_INFINITY;
  #attempt = 0;
  /** Counts the windows begun, so that a window waiting for a read is dropped once a newer one began. */
  #round = 0;
  #ended = false;
  #awaitingOackAck = false;
  /** The client has acknowledged something: its address is real. */
  #heard = false;
  readonly #onHeard: () => void;
  /** This thread's performance.now() of the request, and of its client's boot (for the scheduler). */
  readonly #requestedAt: number;
  readonly rank: number;
  /** Where it stands with the scheduler (schedule.ts): null until it has to ask (it may never), then waiting, then admitted. */
  #admission: 'waiting' | 'admitted' | null = null;

  constructor(
    send: (packet: Buffer) => void,
    blocks: BlockCache,
    size: number,
    settings: TransferSettings,
    oack: Record<string, string> | null,
    onEnd: (end: TransferEnd) => void,
    onHeard: () => void = () => {},
    order: TransferOrder | null = null,
  ) {
    this.#send = send;
    this.#blocks = blocks;
    this.#size = size;
    this.#settings = settings;
    this.#oack = oack;
    this.#onEnd = onEnd;
    this.#onHeard = onHeard;
    // processTime() compares across threads; this thread's own clock is performance.now().
    const local = processTime(0);
    this.#requestedAt = order ? order.requestedAt - local : performance.now();
    this.rank = order ? order.rank - local : this.#requestedAt;
  }

  get limitMs(): number {
    return this.#settings.fileLimitMs ?? Number.POSITIVE_INFINITY;
  }

  get giveUpAt(): number {
    return this.#requestedAt + this.limitMs;
  }

  get remaining(): number {
    return Math.max(0, this.#size - this.#acked * this.#settings.blksize);
  }

  admit(): void {
    if (this.#ended || this.#admission !== 'waiting') return;
    this.#admission = 'admitted';
    this.#attempt = 0;
    this.#sendWindow();
  }

  refuse(): void {
    if (this.#ended) return;
    this.#admission = null;
    this.#send(errorPacket(TftpErrorCode.notDefined, 'Server busy; try again later'));
    this.end('timeout', "its client's time for the file would run out before its turn");
  }

  #heardFrom(): void {
    if (this.#heard) return;
    this.#heard = true;
    this.#onHeard();
  }

  get ended(): boolean {
    return this.#ended;
  }

  start(): void {
    clock.watch(this);
    if (this.#oack) {
      this.#awaitingOackAck = true;
      const at = performance.now();
      this.#send(oackPacket(this.#oack));
      this.#arm(at);
    } else {
      this.#sendWindow();
    }
  }

  receive(packet: Packet): void {
    if (this.#ended) return;
    if (packet.op === 'ack') return this.ack(packet.block);
    if (packet.op === 'error') return this.end('aborted', packet.message);
    this.#send(errorPacket(TftpErrorCode.illegalOperation, 'Only ACK is expected during a read'));
    this.end('error', `the client sent ${packet.op.toUpperCase()} during a read`);
  }

  ack(block: number): void {
    if (this.#ended) return;
    const { busyPollMs } = this.#settings;
    if (busyPollMs > 0) {
      const now = performance.now();
      const sample = now - this.#sentAt;
      this.#roundTrip = this.#roundTrip === Number.POSITIVE_INFINITY ? sample : this.#roundTrip * 0.875 + sample * 0.125;
      if (this.#roundTrip < busyPollMs) clock.pollUntil(now + busyPollMs);
    }
    if (this.#awaitingOackAck) {
      if (block !== 0) return;
      this.#awaitingOackAck = false;
      this.#attempt = 0;
      this.#heardFrom();
      return this.#sendWindow();
    }
    const distance = (block - (this.#acked & 0xffff) + 0x10000) & 0xffff;
    const acked = this.#acked + distance;
    // Duplicate (distance 0) or stale ACKs change nothing.
    if (distance === 0 || acked > this.#sent) return;
    scheduler.served((acked - this.#acked) * this.#settings.blksize);
    this.#acked = acked;
    this.#attempt = 0;
    this.#heardFrom();
    if (acked >= this.#blocks.finalBlock) return this.end('complete');
    if (this.#admission === 'waiting') return;
    if (this.#admission === null && this.#settings.fileLimitMs !== null && this.#size >= admittedFromBytes) {
      // Past its first window a large transfer waits for its turn, sending nothing: its client repeats its ACK.
      this.#admission = 'waiting';
      this.deadline = Number.POSITIVE_INFINITY;
      return scheduler.wait(this);
    }
    // A whole window acknowledged, or part of one (RFC 7440): continue after the last block the client has.
    this.#sendWindow();
  }

  #sendWindow(): void {
    this.#round++;
    this.#sendFrom(this.#acked + 1, this.#round);
  }

  /** Sends the window's blocks from `first` on; at a block not yet read, waits for it and goes on unless a newer window began. */
  #sendFrom(first: number, round: number): void {
    const last = Math.min(this.#acked + this.#settings.windowsize, this.#blocks.finalBlock);
    const at = performance.now();
    let block = first;
    for (; block <= last; block++) {
      const packet = this.#blocks.packet(block);
      if (packet === null) break;
      this.#send(packet);
    }
    if (block - 1 > this.#sent) this.#sent = block - 1;
    this.#arm(at);
    if (block <= last) {
      this.#blocks.load(block, this.#acked + 1).then(
        () => {
          if (!this.#ended && round === this.#round) this.#sendFrom(block, round);
        },
        (error: unknown) => this.#readFailed(error),
      );
    } else {
      this.#blocks.prefetch(last, this.#acked + 1);
    }
  }

  #readFailed(error: unknown): void {
    if (this.#ended) return;
    this.#send(errorPacket(TftpErrorCode.notDefined, 'Read error'));
    this.end('error', `read error: ${error instanceof Error ? error.message : String(error)}`);
  }

  /**
   * Waits for an ACK; each silence doubles the wait, and after the last retry the transfer is given up. `at` is read
   * before the packets went out: on loopback the client may answer before the send returns.
   */
  #arm(at: number): void {
    this.#sentAt = at;
    this.deadline = at + this.#settings.timeoutMs * 2 ** this.#attempt;
  }

  expire(): void {
    if (this.#ended) return;
    const retries = this.#heard ? this.#settings.retries : Math.min(this.#settings.retries, this.#settings.unconfirmedRetries);
    if (++this.#attempt > retries) return this.end('timeout', `no answer after ${retries} retransmissions`);
    // Its client has given up on the file by now: sending again would only cost (it may well answer nothing).
    if (performance.now() >= this.giveUpAt) return this.end('timeout', "no answer, and its client's time for the file ran out");
    if (this.#awaitingOackAck && this.#oack) {
      const at = performance.now();
      this.#send(oackPacket(this.#oack));
      this.#arm(at);
    } else {
      this.#sendWindow();
    }
  }

  /** Ends the transfer: it sends nothing more, `onEnd` is told at once, and `closed` settles once its file is closed. */
  end(outcome: TftpOutcome, error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    clock.unwatch(this);
    if (this.#admission !== null) scheduler.leave(this);
    this.closed = this.#blocks.close().catch(() => {});
    const bytes = Math.min(this.#acked * this.#settings.blksize, this.#size);
    const lastSentAt = processTime(this.#sentAt);
    this.#onEnd(error === undefined ? { outcome, bytes, lastSentAt } : { outcome, error, bytes, lastSentAt });
  }
}
