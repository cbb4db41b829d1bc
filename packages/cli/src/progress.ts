const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB": sizes as a person reads them (exact bytes are in `show` and --json). */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 75 → "1m15s", 8 → "8s". */
function formatSeconds(seconds: number): string {
  const whole = Math.max(0, Math.ceil(seconds));
  return whole >= 60 ? `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s` : `${whole}s`;
}

/** One progress line: "uploading kernel8.img: 45% 45.0 MiB of 100.0 MiB, 30.0 MiB/s, 2s left". */
export function progressLine(label: string, done: number, total: number, elapsedMs: number): string {
  const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
  const rate = elapsedMs > 0 ? (done / elapsedMs) * 1000 : 0;
  const tail = done >= total ? `in ${formatSeconds(elapsedMs / 1000)}` : rate > 0 ? `${formatSeconds((total - done) / rate)} left` : '';
  return `${label}: ${percent}% ${formatSize(done)} of ${formatSize(total)}, ${formatSize(Math.round(rate))}/s${tail ? `, ${tail}` : ''}`;
}

export interface ProgressOutput {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface Progress {
  /** `done` bytes of `total` so far. */
  update(done: number): void;
  /** The last line, ended with a newline (only when a line was shown). */
  finish(): void;
}

const quiet: Progress = { update() {}, finish() {} };

/**
 * Progress with rate and time left, redrawn on one line at most every `intervalMs`, where a person sees
 * it: on a terminal, and only for transfers that last long enough to be worth a line.
 */
export function startProgress(
  label: string,
  total: number,
  options: { output?: ProgressOutput; now?: () => number; intervalMs?: number; minBytes?: number } = {},
): Progress {
  const output = options.output ?? process.stderr;
  if (!output.isTTY || total < (options.minBytes ?? 1024 * 1024)) return quiet;
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 250;
  const started = now();
  let shownAt = Number.NEGATIVE_INFINITY;
  let last = 0;
  let width = 0;
  const draw = (line: string, end: string) => {
    output.write(`\r${line.padEnd(width)}${end}`);
    width = line.length;
  };
  return {
    update(done) {
      last = done;
      const at = now();
      if (at - shownAt < interval) return;
      shownAt = at;
      draw(progressLine(label, done, total, at - started), '');
    },
    finish() {
      if (width === 0 && last < total) return;
      draw(progressLine(label, Math.max(last, total), total, now() - started), '\n');
    },
  };
}
