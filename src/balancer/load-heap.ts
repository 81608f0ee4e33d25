/**
 * An indexed binary min-heap of servers by a load key, for least_conn and
 * least_time: the least loaded server is at the top, so a pick is O(1) and a
 * load change (a request starting or ending, a latency sample, another
 * worker's count) re-sorts one server in O(log n). nginx scans every server
 * on every pick (O(n)).
 *
 * Ties are broken by a virtual pass per server that advances by 1/weight each
 * time it is picked, as start-time fair queueing does (see advance()): among
 * equally loaded servers the one whose turn it is goes next, in proportion to
 * weights. With idle servers that is weighted round robin, as nginx's
 * least_conn does among ties.
 *
 * Keys and passes are stored in heap order (by position), so a sift compares
 * neighbouring memory and moves three numbers.
 */
import type { PickRequest, Tried } from './policy.js';

/** Decides whether the server at an index may take the request (usable, not tried). */
export interface HeapFilter {
  accept(index: number, request: PickRequest, tried: Tried): boolean;
}

export class LoadHeap {
  /** Server index at each position. */
  private readonly heap: Int32Array;
  /** Position of each server index. */
  private readonly pos: Int32Array;
  /** Key and pass at each position. */
  private readonly keys: Float64Array;
  private readonly passes: Float64Array;
  /** 1 / weight, by server index. */
  private readonly stride: Float64Array;
  /** Scratch space for the best-first search past unusable servers. */
  private readonly frontier: Int32Array;
  /** The pass of the last server picked (start-time fair queueing's virtual time). */
  private vtime = 0;
  readonly size: number;

  constructor(weights: readonly number[]) {
    const n = weights.length;
    this.size = n;
    this.heap = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.keys = new Float64Array(n);
    this.passes = new Float64Array(n);
    this.stride = new Float64Array(n);
    this.frontier = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.heap[i] = i;
      this.pos[i] = i;
      this.stride[i] = 1 / Math.max(weights[i]!, 1e-9);
    }
  }

  key(index: number): number {
    return this.keys[this.pos[index]!]!;
  }

  /** Sets the key of `index` and restores the heap order. */
  update(index: number, key: number): void {
    const p = this.pos[index]!;
    const old = this.keys[p]!;
    if (old === key) return;
    this.keys[p] = key;
    if (key < old) this.up(p);
    else this.down(p);
  }

  /**
   * Advances the tie-breaking pass of a server that was just picked, from
   * the later of its own pass and the virtual time (the pass the last picked
   * server started from). A server that was left alone for a while (others
   * were less loaded) takes its turn again at once instead of being owed
   * every turn it missed, and one that got many picks is not held back
   * afterwards.
   */
  advance(index: number): void {
    const p = this.pos[index]!;
    const start = Math.max(this.passes[p]!, this.vtime);
    this.vtime = start;
    this.passes[p] = start + this.stride[index]!;
    this.down(p);
  }

  /**
   * The least loaded index the filter accepts, or -1. Usually the top;
   * otherwise the heap is walked best-first (a small heap of positions),
   * which costs O(k log k) for k servers skipped.
   */
  best(filter: HeapFilter, request: PickRequest, tried: Tried): number {
    const n = this.size;
    if (n === 0) return -1;
    const heap = this.heap;
    if (filter.accept(heap[0]!, request, tried)) return heap[0]!;
    const f = this.frontier;
    let len = 0;
    if (n > 1) len = this.frontierPush(f, len, 1);
    if (n > 2) len = this.frontierPush(f, len, 2);
    while (len > 0) {
      const p = f[0]!;
      len--;
      if (len > 0) {
        f[0] = f[len]!;
        this.frontierDown(f, len);
      }
      const index = heap[p]!;
      if (filter.accept(index, request, tried)) return index;
      const c = 2 * p + 1;
      if (c < n) len = this.frontierPush(f, len, c);
      if (c + 1 < n) len = this.frontierPush(f, len, c + 1);
    }
    return -1;
  }

  /** Indexes from least to most loaded (tests, debugging). */
  ordered(): number[] {
    const order = Array.from(this.heap.keys());
    order.sort((a, b) => (this.less(a, b) ? -1 : this.less(b, a) ? 1 : 0));
    return order.map((p) => this.heap[p]!);
  }

  /** Position p orders before position q. */
  private less(p: number, q: number): boolean {
    const kp = this.keys[p]!;
    const kq = this.keys[q]!;
    if (kp !== kq) return kp < kq;
    const pp = this.passes[p]!;
    const pq = this.passes[q]!;
    if (pp !== pq) return pp < pq;
    return this.heap[p]! < this.heap[q]!;
  }

  private move(from: number, to: number): void {
    const index = this.heap[from]!;
    this.heap[to] = index;
    this.keys[to] = this.keys[from]!;
    this.passes[to] = this.passes[from]!;
    this.pos[index] = to;
  }

  private up(p: number): void {
    const index = this.heap[p]!;
    const key = this.keys[p]!;
    const pass = this.passes[p]!;
    while (p > 0) {
      const parent = (p - 1) >> 1;
      const kq = this.keys[parent]!;
      if (kq < key || (kq === key && (this.passes[parent]! < pass || (this.passes[parent] === pass && this.heap[parent]! < index)))) break;
      this.move(parent, p);
      p = parent;
    }
    this.heap[p] = index;
    this.keys[p] = key;
    this.passes[p] = pass;
    this.pos[index] = p;
  }

  private down(p: number): void {
    const n = this.size;
    const index = this.heap[p]!;
    const key = this.keys[p]!;
    const pass = this.passes[p]!;
    for (;;) {
      let c = 2 * p + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(c + 1, c)) c++;
      const kc = this.keys[c]!;
      if (kc > key || (kc === key && (this.passes[c]! > pass || (this.passes[c] === pass && this.heap[c]! > index)))) break;
      this.move(c, p);
      p = c;
    }
    this.heap[p] = index;
    this.keys[p] = key;
    this.passes[p] = pass;
    this.pos[index] = p;
  }

  private frontierPush(f: Int32Array, len: number, position: number): number {
    let i = len;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(position, f[parent]!)) break;
      f[i] = f[parent]!;
      i = parent;
    }
    f[i] = position;
    return len + 1;
  }

  private frontierDown(f: Int32Array, len: number): void {
    const position = f[0]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= len) break;
      if (c + 1 < len && this.less(f[c + 1]!, f[c]!)) c++;
      if (!this.less(f[c]!, position)) break;
      f[i] = f[c]!;
      i = c;
    }
    f[i] = position;
  }
}
