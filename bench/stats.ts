/** Aggregation and number formatting for the report. */

/** Median of the finite values; NaN if there are none. */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const NA = 'n/a';

/** 41234.5 -> "41,235" */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : NA;
}

/** Fixed decimals, or n/a. */
export function fmtNum(n: number, decimals = 1): string {
  return Number.isFinite(n) ? n.toFixed(decimals) : NA;
}

/** Microseconds as "850 µs" or "1.23 ms" or "1.20 s". */
export function fmtLatency(us: number): string {
  if (!Number.isFinite(us)) return NA;
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(2)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : NA;
}

export function fmtPercent(p: number): string {
  return Number.isFinite(p) ? `${Math.round(p)}%` : NA;
}

/** Compact req/s for the per-run column: 41234 -> "41.2k". */
export function fmtKilo(n: number): string {
  if (!Number.isFinite(n)) return NA;
  return n >= 1000 ? `${(n / 1000).toFixed(1)}k` : `${Math.round(n)}`;
}
