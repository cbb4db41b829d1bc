/** A storm boots at most this many machines. */
export const maxStormCount = 100_000;

export interface ArrivalPlan {
  count: number;
  /** Arrivals are spread evenly over this span; 0 starts every device at once. */
  arrivalMs: number;
  /** At most this many devices boot at the same time; later arrivals wait for a free slot. */
  concurrency: number;
  /** The whole run ends by then: running devices are told to stop (their signal aborts), waiting ones never start. */
  deadlineMs: number;
}

/**
 * Runs `boot(index, signal)` for `count` devices as they arrive, bounded in concurrency and time. The result for
 * a device that had not started by the deadline is `notStarted(index)`; a boot that throws gives `crashed(index, error)`.
 */
export async function runArrivals<T>(
  plan: ArrivalPlan,
  boot: (index: number, signal: AbortSignal) => Promise<T>,
  fallback: { notStarted: (index: number) => T; crashed: (index: number, error: unknown) => T },
): Promise<T[]> {
  const results: T[] = new Array(plan.count);
  const controller = new AbortController();
  const started = performance.now();
  const spacing = plan.count > 1 ? plan.arrivalMs / plan.count : 0;
  let next = 0;
  let active = 0;
  let wake: NodeJS.Timeout | null = null;
  const deadline = setTimeout(() => controller.abort(), plan.deadlineMs);
  await new Promise<void>((done) => {
    const settle = () => {
      if (active > 0) return;
      if (next >= plan.count || controller.signal.aborted) done();
    };
    const pump = () => {
      wake = null;
      while (next < plan.count && active < plan.concurrency && !controller.signal.aborted) {
        const wait = started + next * spacing - performance.now();
        if (wait > 0) {
          wake = setTimeout(pump, wait);
          return;
        }
        const index = next++;
        active++;
        boot(index, controller.signal)
          .then(
            (result) => {
              results[index] = result;
            },
            (error: unknown) => {
              results[index] = fallback.crashed(index, error);
            },
          )
          .finally(() => {
            active--;
            if (wake === null) pump();
            settle();
          });
      }
      settle();
    };
    controller.signal.addEventListener('abort', () => {
      if (wake) clearTimeout(wake);
      settle();
    });
    pump();
  });
  clearTimeout(deadline);
  for (let index = 0; index < plan.count; index++) results[index] ??= fallback.notStarted(index);
  return results;
}

/** Median, 95th percentile and maximum (nearest rank), rounded to whole milliseconds; zeros when empty. */
export function timeSummary(values: number[]): { median: number; p95: number; max: number } {
  if (values.length === 0) return { median: 0, p95: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return { median: Math.round(rank(0.5)), p95: Math.round(rank(0.95)), max: Math.round(sorted[sorted.length - 1]) };
}

/**
 * A loopback source address for device number `n` (from its lower 23 bits: 127.1.0.1 for 1), so a server sees
 * each device as a client of its own, as on a real network.
 */
export function loopbackSource(n: number): string {
  return `127.${1 + ((n >> 16) & 0x7f)}.${(n >> 8) & 0xff}.${n & 0xff}`;
}
