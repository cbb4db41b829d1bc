// A transfer thread (see pool.ts): runs the transfers it is given, each from its own socket, and says how each ended.
import { parentPort } from 'node:worker_threads';
import { transferableReader } from './blocks.ts';
import type { FromWorker, ToWorker } from './pool.ts';
import { runOnOwnPort } from './ports.ts';
import type { Transfer, TransferEnd } from './transfer.ts';

if (!parentPort) throw new Error('worker.ts runs as a worker thread of TransferPool');
const port = parentPort;
const running = new Map<number, Transfer>();
/** Files of ended transfers still being closed: stop waits for them. */
const closing = new Set<Promise<void>>();

const post = (message: FromWorker) => port.postMessage(message);
const onError = (error: unknown) => post({ type: 'error', message: error instanceof Error ? error.message : String(error) });

function start(id: number, message: Extract<ToWorker, { type: 'start' }>): void {
  const onEnd = (end: TransferEnd) => {
    running.delete(id);
    const closed = transfer.closed;
    if (closed) {
      closing.add(closed);
      void closed.then(() => closing.delete(closed));
    }
    post({ type: 'end', id, end });
  };
  const transfer = runOnOwnPort(message.job, transferableReader(message.source), onEnd, onError, () => post({ type: 'heard', id }));
  running.set(id, transfer);
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'start') return start(message.id, message);
  if (message.type === 'end') return running.get(message.id)?.end(message.outcome, message.error);
  for (const transfer of running.values()) transfer.end('error', 'server stopped');
  void Promise.all(closing).then(() => post({ type: 'stopped' }));
});
