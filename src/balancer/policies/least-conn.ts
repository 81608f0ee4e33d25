/**
 * least_conn (nginx): the server with the fewest requests in flight relative
 * to its weight (active / weight; in flight counts every worker's requests,
 * `active + remoteActive`), ties broken in weighted round-robin order.
 * Backup servers are used only when no primary is usable.
 *
 * The servers are kept in a heap by load (src/balancer/load-heap.ts): the
 * policy watches its servers and re-sorts one when its load changes, so a
 * pick is O(1) (O(k log k) when k servers at the top are unusable) and each
 * request start or end costs O(log n).
 */
import { LoadHeap, type HeapFilter } from '../load-heap.js';
import { loadOf, tierWeights, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { LoadWatcher, ServerState } from '../../upstream/server-state.js';

/** One tier (primary or backup) in a heap, keyed by a load function. */
export class HeapTier implements HeapFilter {
  readonly heap: LoadHeap;
  readonly weights: number[];

  constructor(
    readonly servers: readonly ServerState[],
    weights: readonly number[] | undefined,
    private readonly keyOf: (server: ServerState, weight: number) => number,
  ) {
    this.weights = tierWeights(servers, weights);
    this.heap = new LoadHeap(this.weights);
    servers.forEach((s, i) => this.heap.update(i, keyOf(s, this.weights[i]!)));
  }

  refresh(index: number): void {
    this.heap.update(index, this.keyOf(this.servers[index]!, this.weights[index]!));
  }

  accept(index: number, request: PickRequest, tried: Tried): boolean {
    return usable(this.servers[index]!, request, tried);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const i = this.heap.best(this, request, tried);
    if (i < 0) return undefined;
    this.heap.advance(i);
    return this.servers[i];
  }
}

const connKey = (s: ServerState, weight: number): number => loadOf(s) / weight;

/** Makes `policy` the watcher of `server`, which is at `slot` in its tables (backups: -(index + 1)). */
export function watch(server: ServerState, policy: LoadWatcher, slot: number): void {
  server.watcher = policy;
  server.watchSlot = slot;
}

export class LeastConnPolicy implements BalancingPolicy, LoadWatcher {
  readonly name = 'least_conn';
  private readonly primary: HeapTier;
  private readonly backup: HeapTier;

  constructor(snapshot: ServerSnapshot) {
    this.primary = new HeapTier(snapshot.primary, snapshot.primaryWeights, connKey);
    this.backup = new HeapTier(snapshot.backup, snapshot.backupWeights, connKey);
    snapshot.primary.forEach((s, i) => watch(s, this, i));
    snapshot.backup.forEach((s, i) => watch(s, this, -(i + 1)));
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    return this.primary.pick(request, tried) ?? this.backup.pick(request, tried);
  }

  loadChanged(server: ServerState): void {
    const slot = server.watchSlot;
    if (slot >= 0) this.primary.refresh(slot);
    else this.backup.refresh(-slot - 1);
  }

  timing(): void {}

  explain(server: ServerState): string {
    const slot = server.watchSlot;
    const weight = slot >= 0 ? this.primary.weights[slot] : this.backup.weights[-slot - 1];
    return `least connections: ${loadOf(server)} in flight with this one, weight ${weight}${server.backup ? ', backup' : ''}`;
  }
}

export const leastConn = (snapshot: ServerSnapshot): BalancingPolicy => new LeastConnPolicy(snapshot);
