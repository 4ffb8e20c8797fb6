/** Percentiles, medians and plain-text tables for the report. */

/** The p-th percentile (nearest rank) of `xs`; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A number for a table: `digits` decimals, thousands separated; "-" for NaN/undefined. */
export function fmt(x: number | undefined | null, digits = 0): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "1.23x" */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-';
}

/**
 * A Markdown table (readable as plain text too). `align` has one letter per column, `l` or `r`;
 * by default the first column is left-aligned and the others (figures) right-aligned.
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[], align?: string): string {
  const right = (i: number): boolean => (align ? align[i] === 'r' : i > 0);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => '| ' + cells.map((c, i) => (right(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(' | ') + ' |';
  return [line(head), '|' + w.map((n, i) => (right(i) ? '-'.repeat(n + 1) + ':' : '-'.repeat(n + 2))).join('|') + '|', ...rows.map(line)].join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `f` until it is true or `timeoutMs` passes; returns whether it became true. */
export async function until(f: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await f()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
