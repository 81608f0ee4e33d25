/**
 * A fixed-bucket latency histogram for the hot path: observe() is a short
 * linear scan over 13 bounds and one typed-array increment (no allocation,
 * no prom-client call). Counts are per bucket (not cumulative); the metrics
 * exporter makes them cumulative at scrape time.
 *
 * Bounds are Prometheus' usual latency buckets, in milliseconds.
 */
import { DOUBLE_ZERO } from '../runtime/double-zero.js';

export const LATENCY_BOUNDS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
const BOUNDS = Float64Array.from(LATENCY_BOUNDS_MS);
const N = BOUNDS.length;

export class LatencyHistogram {
  /** counts[i] = observations <= BOUNDS[i] and > BOUNDS[i-1]; counts[N] = above the last bound. */
  readonly counts = new Float64Array(N + 1);
  /** Sum of observed values, ms. */
  sum = DOUBLE_ZERO;

  observe(ms: number): void {
    let i = 0;
    while (i < N && ms > BOUNDS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
  }

  get count(): number {
    let n = 0;
    for (let i = 0; i <= N; i++) n += this.counts[i]!;
    return n;
  }

  /** Plain data for IPC and JSON. */
  toJSON(): HistogramData {
    return { counts: Array.from(this.counts), sum: this.sum };
  }
}

export interface HistogramData {
  counts: number[];
  sum: number;
}

export function emptyHistogram(): HistogramData {
  return { counts: new Array<number>(N + 1).fill(0), sum: 0 };
}

/** Adds `b` into `a` (aggregating workers). */
export function addHistogram(a: HistogramData, b: HistogramData): void {
  for (let i = 0; i < a.counts.length && i < b.counts.length; i++) a.counts[i]! += b.counts[i]!;
  a.sum += b.sum;
}

/** Approximate quantile (linear within the bucket), ms; 0 when empty. */
export function histogramQuantile(h: HistogramData, q: number): number {
  const total = h.counts.reduce((x, y) => x + y, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i]!;
    if (seen + c >= rank && c > 0) {
      const lo = i === 0 ? 0 : BOUNDS[i - 1]!;
      const hi = i < N ? BOUNDS[i]! : BOUNDS[N - 1]! * 2;
      return lo + ((hi - lo) * (rank - seen)) / c;
    }
    seen += c;
  }
  return BOUNDS[N - 1]!;
}
