import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type FollowOptions, LogFollower } from './follow.ts';

const dirs: string[] = [];
const followers: LogFollower[] = [];
after(async () => {
  for (const follower of followers) await follower.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function logPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'muster-follow-'));
  dirs.push(dir);
  return join(dir, 'dnsmasq.log');
}

/** A follower whose lines can be awaited by count; gives up after 10 s so a broken follower fails, not hangs. */
async function follow(path: string, options: Omit<FollowOptions, 'onLine'> = {}) {
  const lines: string[] = [];
  let waiter: { count: number; resolve: () => void } | null = null;
  const follower = await LogFollower.start(path, {
    ...options,
    onLine(line) {
      lines.push(line);
      if (waiter && lines.length >= waiter.count) waiter.resolve();
    },
  });
  followers.push(follower);
  const until = (count: number) =>
    new Promise<string[]>((resolve, reject) => {
      if (lines.length >= count) return resolve(lines);
      const timer = setTimeout(() => reject(new Error(`got ${JSON.stringify(lines)}, waiting for ${count} lines`)), 10_000);
      waiter = {
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(lines);
        },
      };
    });
  return { follower, lines, until };
}

describe('LogFollower', () => {
  test('starts at the end: only lines written after the start are delivered', async () => {
    const path = logPath();
    writeFileSync(path, 'old 1\nold 2\n');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'new 1\nnew 2\n');
    assert.deepEqual(await until(2), ['new 1', 'new 2']);
    await follower.close();
  });

  test('--from-start replays what the file holds', async () => {
    const path = logPath();
    writeFileSync(path, 'old 1\nold 2\n');
    const { follower, until } = await follow(path, { fromStart: true });
    appendFileSync(path, 'new\n');
    assert.deepEqual(await until(3), ['old 1', 'old 2', 'new']);
    await follower.close();
  });

  test('a write that ends mid-line waits for the rest of the line', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, lines, until } = await follow(path);
    appendFileSync(path, 'dnsmasq-tftp[1]: sent /srv/tf');
    appendFileSync(path, 'tp/abcd1234/start4.elf to 10.0.0.5\nsecond');
    await until(1);
    appendFileSync(path, ' half\n');
    assert.deepEqual(await until(2), ['dnsmasq-tftp[1]: sent /srv/tftp/abcd1234/start4.elf to 10.0.0.5', 'second half']);
    assert.equal(lines.length, 2);
    await follower.close();
  });

  test('a character split between two writes arrives whole', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    const bytes = Buffer.from('café\n');
    appendFileSync(path, bytes.subarray(0, 4));
    appendFileSync(path, bytes.subarray(4));
    assert.deepEqual(await until(1), ['café']);
    await follower.close();
  });

  test('starting at the end of an unfinished line skips its rest', async () => {
    const path = logPath();
    writeFileSync(path, 'whole\nhalf a li');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'ne\nnext\n');
    assert.deepEqual(await until(1), ['next']);
    await follower.close();
  });

  test('rotation by rename: the old file is read to its end, then the new one from its start', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'before rotation\n');
    await until(1);
    renameSync(path, `${path}.1`);
    // The writer has not reopened yet: its lines still land in the renamed file.
    appendFileSync(`${path}.1`, 'late, in the old file\n');
    await until(2);
    writeFileSync(path, 'first in the new file\n');
    appendFileSync(path, 'second in the new file\n');
    assert.deepEqual(await until(4), ['before rotation', 'late, in the old file', 'first in the new file', 'second in the new file']);
    await follower.close();
  });

  test('rotation by copytruncate: a file that shrank is read again from its start', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'a fairly long line before the truncation\n');
    await until(1);
    truncateSync(path, 0);
    appendFileSync(path, 'after\n');
    assert.deepEqual(await until(2), ['a fairly long line before the truncation', 'after']);
    await follower.close();
  });

  test('copytruncate followed at once by a line as long as what was there is still seen as a new start', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'file /srv/tftp/a1000101/start4.elf not found\n');
    await until(1);
    // Both in one tick: the follower sees only the end state, a file as long as before with other bytes.
    truncateSync(path, 0);
    appendFileSync(path, 'file /srv/tftp/a1000102/config.txt not found\n');
    assert.deepEqual(await until(2), ['file /srv/tftp/a1000101/start4.elf not found', 'file /srv/tftp/a1000102/config.txt not found']);
    await follower.close();
  });

  test('a file that does not exist yet is followed from its creation', async () => {
    const path = logPath();
    const { follower, until } = await follow(path);
    writeFileSync(path, 'created\n');
    appendFileSync(path, 'appended\n');
    assert.deepEqual(await until(2), ['created', 'appended']);
    await follower.close();
  });

  test('a deleted and recreated file is followed again', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    appendFileSync(path, 'one\n');
    await until(1);
    unlinkSync(path);
    writeFileSync(path, 'two\n');
    assert.deepEqual(await until(2), ['one', 'two']);
    await follower.close();
  });

  test('a burst of lines in many writes arrives complete and in order', async () => {
    const path = logPath();
    writeFileSync(path, '');
    const { follower, until } = await follow(path);
    const expected: string[] = [];
    for (let i = 0; i < 2000; i++) {
      expected.push(`line ${i}`);
      appendFileSync(path, `line ${i}\n`);
    }
    assert.deepEqual(await until(2000), expected);
    await follower.close();
  });

  test('a directory that does not exist is an error at start', async () => {
    await assert.rejects(LogFollower.start(join(logPath(), 'nope', 'x.log'), { onLine() {} }), { code: 'ENOENT' });
  });
});
