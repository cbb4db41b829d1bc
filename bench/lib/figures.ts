import os from 'node:os';

export type DbKind = 'sqlite' | 'postgres';

export interface Target {
  op: '>=' | '<';
  value: number;
}

export type Verdict = 'PASS' | 'SHORT' | 'INFO' | 'ERROR';

export interface Figure {
  bench: string;
  db: DbKind;
  metric: string;
  value: number | null;
  unit: string;
  target?: Target;
  verdict: Verdict;
  note?: string;
}

export function figure(
  bench: string,
  db: DbKind,
  metric: string,
  value: number | null,
  unit: string,
  target?: Target,
  note?: string,
): Figure {
  let verdict: Verdict = 'INFO';
  if (value === null || Number.isNaN(value)) verdict = 'ERROR';
  else if (target) verdict = (target.op === '>=' ? value >= target.value : value < target.value) ? 'PASS' : 'SHORT';
  return { bench, db, metric, value, unit, target, verdict, note };
}

/** A figure that could not be measured. */
export function failed(bench: string, db: DbKind, metric: string, unit: string, target: Target | undefined, error: unknown): Figure {
  return { bench, db, metric, value: null, unit, target, verdict: 'ERROR', note: oneLine(error) };
}

export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatValue(value: number | null, unit: string): string {
  if (value === null) return '—';
  return unit ? `${formatNumber(value)} ${unit}` : formatNumber(value);
}

export function formatTarget(target: Target | undefined, unit: string): string {
  if (!target) return '';
  return `${target.op === '>=' ? '≥' : '<'} ${formatValue(target.value, unit)}`;
}

const columns = ['bench', 'db', 'metric', 'value', 'target', 'verdict', 'note'] as const;

function rows(figures: Figure[]): string[][] {
  return figures.map((f) => [
    f.bench,
    f.db,
    f.metric,
    formatValue(f.value, f.unit),
    formatTarget(f.target, f.unit),
    f.verdict,
    f.note ?? '',
  ]);
}

/** A plain-text table for the terminal. */
export function textTable(figures: Figure[]): string {
  const body = rows(figures);
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((r) => (i === 6 ? 0 : r[i].length))));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 6 ? cell : i === 3 || i === 4 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w, i) => (i === 6 ? '----' : '-'.repeat(w)))), ...body.map(line)].join('\n');
}

/** The same table in Markdown. */
export function markdownTable(figures: Figure[]): string {
  const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|');
  const head = `| ${columns.join(' | ')} |\n| ${columns.map((_, i) => (i === 3 || i === 4 ? '---:' : '---')).join(' | ')} |`;
  return [head, ...rows(figures).map((r) => `| ${r.map(escapeCell).join(' | ')} |`)].join('\n');
}

/** What the machine is, for the results. */
export function machineDescription(): string {
  const cpus = os.cpus();
  const model = cpus[0] ? `${cpus[0].model.replace(/\s+/g, ' ').trim()}${cpus[0].speed ? ` @ ${cpus[0].speed} MHz` : ''}` : 'unknown CPU';
  const memory = (os.totalmem() / 1024 ** 3).toFixed(1);
  return `${cpus.length} × ${model}, ${memory} GiB RAM, ${os.type()} ${os.release()} (${os.arch()}), Node ${process.versions.node}`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
