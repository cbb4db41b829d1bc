/** One server-sent event, as the text/event-stream format defines it. */
export interface StreamMessage {
  id: string | null;
  event: string;
  data: string;
}

/** Splits a text/event-stream body into messages; comments (`: ping`) are skipped. */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>): AsyncGenerator<StreamMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let message = emptyMessage();
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    // A lone \r at the end may be half of \r\n: keep it until the next chunk.
    let match = /\r\n|\n|\r(?=[^\n])/.exec(buffer);
    while (match) {
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (message.data.length > 0) yield { id: message.id, event: message.event || 'message', data: message.data.join('\n') };
        message = emptyMessage();
      } else {
        applyField(message, line);
      }
      match = /\r\n|\n|\r(?=[^\n])/.exec(buffer);
    }
  }
}

interface PartialMessage {
  id: string | null;
  event: string;
  data: string[];
}

function emptyMessage(): PartialMessage {
  return { id: null, event: '', data: [] };
}

function applyField(message: PartialMessage, line: string): void {
  if (line.startsWith(':')) return;
  const colon = line.indexOf(':');
  const field = colon === -1 ? line : line.slice(0, colon);
  const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
  if (field === 'data') message.data.push(value);
  else if (field === 'event') message.event = value;
  else if (field === 'id' && !value.includes('\0')) message.id = value;
}
