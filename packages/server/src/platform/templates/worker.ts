// A render thread (see pool.ts): renders the templates it is given, one at a time, in the Liquid sandbox.
import { parentPort } from 'node:worker_threads';
import { isRenderLimit, maxRenderedBytes, parseTemplate, renderParsed, timeoutDetail } from './engine.ts';
import type { FromRenderThread, ToRenderThread } from './pool.ts';

if (!parentPort) throw new Error('worker.ts runs as a thread of RenderPool');
const port = parentPort;
const post = (message: FromRenderThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function render(job: ToRenderThread): Promise<void> {
  const { id, name, limitMs } = job;
  let text: string;
  try {
    text = await renderParsed(parseTemplate(job.source), job.context, limitMs);
  } catch (error) {
    if (isRenderLimit(error)) return post({ type: 'failed', id, code: 'render_timeout', detail: timeoutDetail(name, limitMs) });
    const reason = (error as Error).message.split('\n')[0];
    return post({ type: 'failed', id, code: 'validation_failed', detail: `Template ${name} does not render: ${reason}` });
  }
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > maxRenderedBytes)
    return post({
      type: 'failed',
      id,
      code: 'payload_too_large',
      detail: `Template ${name} renders ${bytes.length} bytes; at most ${maxRenderedBytes}`,
    });
  post({ type: 'done', id, bytes }, [bytes.buffer as ArrayBuffer]);
}

port.on('message', (job: ToRenderThread) => void render(job));
post({ type: 'ready' });
