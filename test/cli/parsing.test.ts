import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseIdentifier, parseLabel } from '../../packages/cli/src/arguments.ts';
import { mergeLabels } from '../../packages/cli/src/commands/machine.ts';
import { parseEventStream } from '../../packages/cli/src/event-stream.ts';
import { stripOneNewline } from '../../packages/cli/src/prompt.ts';

async function* chunks(...parts: string[]) {
  for (const part of parts) yield new TextEncoder().encode(part);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('argument parsing', () => {
  test('labels split at the first =, so values may hold =', () => {
    assert.deepEqual(parseLabel('note=a=b'), ['note', 'a=b']);
    assert.deepEqual(parseLabel('empty='), ['empty', '']);
    assert.throws(() => parseLabel('=x'), /expected key=value/);
  });

  test('identifiers are normalised by the contract rules', () => {
    assert.deepEqual(parseIdentifier('mac:00-11-22-AA-BB-CC'), { kind: 'mac', value: '00:11:22:aa:bb:cc' });
    assert.deepEqual(parseIdentifier('serial: AZJN-0042 '), { kind: 'serial', value: 'AZJN-0042' });
    assert.throws(() => parseIdentifier('mac:00:11'), /mac "00:11" is not valid/);
    assert.throws(() => parseIdentifier('color:red'), /kind is one of mac, uuid/);
  });

  test('label changes merge: --unlabel removes, --label adds or replaces', () => {
    assert.deepEqual(
      mergeLabels(
        { a: '1', b: '2', c: '3' },
        [
          ['b', '20'],
          ['d', '4'],
        ],
        ['c', 'missing'],
      ),
      { a: '1', b: '20', d: '4' },
    );
  });

  test('--password-stdin strips exactly one trailing newline', () => {
    assert.deepEqual(['pw\n', 'pw\r\n', 'pw\n\n', 'pw'].map(stripOneNewline), ['pw', 'pw', 'pw\n', 'pw']);
  });
});

describe('event stream parsing', () => {
  test('messages split across chunks, CRLF line ends, comments and multi-line data', async () => {
    const messages = await collect(
      parseEventStream(chunks(': ping\n\nid: 1\nda', 'ta: {"a":1}\r\n\r', '\nid: 2\nevent: x\ndata: one\ndata: two\n\n: ping\n\n')),
    );
    assert.deepEqual(messages, [
      { id: '1', event: 'message', data: '{"a":1}' },
      { id: '2', event: 'x', data: 'one\ntwo' },
    ]);
  });

  test('a message cut off by the end of the stream is dropped', async () => {
    assert.deepEqual(await collect(parseEventStream(chunks('id: 1\ndata: whole\n\nid: 2\ndata: half'))), [
      { id: '1', event: 'message', data: 'whole' },
    ]);
  });
});
