/**
 * nginx's walk over servers by weight (`w = hash % total_weight; while (w >=
 * peer->weight) { w -= peer->weight; peer++; }`) as a binary search over
 * cumulative weights: the same server for the same number, in O(log n)
 * instead of O(n).
 */
export class WeightRanges {
  /** ends[i] = weights[0] + ... + weights[i]. */
  private readonly ends: Float64Array;
  readonly total: number;

  constructor(weights: readonly number[]) {
    this.ends = new Float64Array(weights.length);
    let sum = 0;
    weights.forEach((w, i) => {
      sum += w;
      this.ends[i] = sum;
    });
    this.total = sum;
  }

  /** The index whose range holds `w` (0 <= w < total). */
  find(w: number): number {
    const ends = this.ends;
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (w < ends[mid]!) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
