import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatSize, progressLine, startProgress } from './progress.ts';

const MiB = 1024 * 1024;

function terminal() {
  const written: string[] = [];
  return { output: { isTTY: true, write: (text: string) => written.push(text) }, written };
}

describe('transfer progress', () => {
  test('a line gives percent, bytes, rate and time left; the last one the time taken', () => {
    assert.equal(
      progressLine('uploading kernel8.img', 45 * MiB, 100 * MiB, 1500),
      'uploading kernel8.img: 45% 45.0 MiB of 100.0 MiB, 30.0 MiB/s, 2s left',
    );
    assert.equal(
      progressLine('uploading kernel8.img', 100 * MiB, 100 * MiB, 75_000),
      'uploading kernel8.img: 100% 100.0 MiB of 100.0 MiB, 1.3 MiB/s, in 1m15s',
    );
    assert.equal(formatSize(1536), '1.5 KiB');
    assert.equal(formatSize(512), '512 B');
  });

  test('on a terminal: redrawn in place at most every 250 ms, then one finished line', () => {
    const { output, written } = terminal();
    let clock = 0;
    const progress = startProgress('downloading x', 10 * MiB, { output, now: () => clock });
    clock = 100;
    progress.update(MiB);
    clock = 200;
    progress.update(2 * MiB);
    clock = 400;
    progress.update(4 * MiB);
    clock = 1000;
    progress.finish();
    assert.deepEqual(written, [
      '\rdownloading x: 10% 1.0 MiB of 10.0 MiB, 10.0 MiB/s, 1s left',
      '\rdownloading x: 40% 4.0 MiB of 10.0 MiB, 10.0 MiB/s, 1s left',
      '\rdownloading x: 100% 10.0 MiB of 10.0 MiB, 10.0 MiB/s, in 1s\n',
    ]);
  });

  test('nothing is written where no person watches (not a terminal) or for small files', () => {
    const piped = {
      isTTY: false,
      written: [] as string[],
      write(text: string) {
        this.written.push(text);
      },
    };
    const progress = startProgress('uploading x', 100 * MiB, { output: piped });
    progress.update(50 * MiB);
    progress.finish();
    assert.deepEqual(piped.written, []);
    const { output, written } = terminal();
    const small = startProgress('uploading y', 1000, { output });
    small.update(1000);
    small.finish();
    assert.deepEqual(written, []);
  });
});
