/** A table cell: missing values print as `-` so columns stay readable and parseable with awk. */
export type Cell = string | number | boolean | null | undefined;

const gap = '  ';

function cellText(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  // One row per line: a newline or tab inside a value would break the columns.
  return String(value).replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

function width(text: string): number {
  return [...text].length;
}

/** Columns aligned on the widest cell, two spaces apart, no trailing spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = [headers.map((h) => h.toUpperCase()), ...rows.map((row) => headers.map((_, i) => cellText(row[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((row) => width(row[i]))));
  return text
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i] - width(cell))))
        .join(gap)
        .trimEnd(),
    )
    .join('\n');
}

/** A field of a key: value block; undefined fields are left out. */
export type Field = readonly [label: string, value: Cell | readonly string[]];

/** `label: value` lines with values aligned; list values continue on indented lines. */
export function renderFields(fields: readonly Field[]): string {
  const shown = fields.filter(([, value]) => value !== undefined);
  const labelWidth = Math.max(0, ...shown.map(([label]) => width(label) + 1));
  const lines: string[] = [];
  for (const [label, value] of shown) {
    const values = Array.isArray(value) ? (value.length > 0 ? value : ['-']) : [cellText(value as Cell)];
    const pad = ' '.repeat(labelWidth - width(label) - 1);
    lines.push(`${label}:${pad} ${values[0]}`);
    for (const more of values.slice(1)) lines.push(`${' '.repeat(labelWidth)} ${more}`);
  }
  return lines.join('\n');
}

/** RFC 3339 without milliseconds; `-` when there is no time. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const units: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** How long ago, as a person reads it in a table: `45s ago`, `3h ago`, `12d ago`. */
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const elapsed = now - then;
  if (elapsed < 0) return 'just now';
  for (const [unit, ms] of units) {
    if (elapsed >= ms) return `${Math.floor(elapsed / ms)}${unit} ago`;
  }
  return 'just now';
}

export function formatLabels(labels: Record<string, string> | undefined): string[] {
  return Object.entries(labels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printText(text: string): void {
  if (text !== '') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Notes for people (hints, "shown only once") go to stderr, so stdout stays the data. */
export function printNote(text: string): void {
  process.stderr.write(`${text}\n`);
}
