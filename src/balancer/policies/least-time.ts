/**
 * least_time (nginx Plus's `least_time header | last_byte`, Envoy's and
 * Linkerd's latency-aware balancing): the server with the lowest expected
 * wait, its peak-EWMA latency times the requests in flight there plus one,
 * over its weight (src/balancer/peak-ewma.ts). `header` measures the time to
 * the response head, `last_byte` to the end of the response.
 *
 * Kept in a heap like least_conn: a pick is O(1), a latency sample or a load
 * change O(log n). A server that was slow is no longer picked, so nothing
 * would ever tell that it got fast again: every EXPLORE_EVERY picks, the next
 * server in turn is looked at, and if it has not been measured for STALE_MS
 * (nor explored), it gets that request. So each server is measured at least
 * about once a second, which costs a slow server one request a second.
 */
import { STALE_MS, observeLatency, timeCost } from '../peak-ewma.js';
import { loadOf, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { LoadWatcher, ServerState } from '../../upstream/server-state.js';
import { HeapTier, watch } from './least-conn.js';

export const EXPLORE_EVERY = 16;

export class LeastTimePolicy implements BalancingPolicy, LoadWatcher {
  readonly name: string;
  private readonly primary: HeapTier;
  private readonly backup: HeapTier;
  private picks = 0;
  private cursor = 0;
  /** When each primary server was last explored (request.now). */
  private readonly exploredAt: Float64Array;
  private explored: ServerState | undefined;

  constructor(
    snapshot: ServerSnapshot,
    private readonly lastByte: boolean,
  ) {
    this.name = lastByte ? 'least_time last_byte' : 'least_time header';
    this.primary = new HeapTier(snapshot.primary, snapshot.primaryWeights, timeCost);
    this.backup = new HeapTier(snapshot.backup, snapshot.backupWeights, timeCost);
    snapshot.primary.forEach((s, i) => watch(s, this, i));
    snapshot.backup.forEach((s, i) => watch(s, this, -(i + 1)));
    this.exploredAt = new Float64Array(snapshot.primary.length).fill(-Infinity);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    if (++this.picks >= EXPLORE_EVERY && tried.length === 0) {
      this.picks = 0;
      const explored = this.explore(request, tried);
      if (explored !== undefined) return explored;
    }
    return this.primary.pick(request, tried) ?? this.backup.pick(request, tried);
  }

  /** The next server in turn, if it is due for a measurement. */
  private explore(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.primary.servers;
    if (servers.length < 2) return undefined;
    const i = this.cursor;
    this.cursor = i + 1 === servers.length ? 0 : i + 1;
    const s = servers[i]!;
    const now = request.now;
    if (s.peakEwmaMs === 0 || now - s.peakEwmaAt < STALE_MS || now - this.exploredAt[i]! < STALE_MS || !usable(s, request, tried)) return undefined;
    this.exploredAt[i] = now;
    this.explored = s;
    return s;
  }

  loadChanged(server: ServerState): void {
    const slot = server.watchSlot;
    if (slot >= 0) this.primary.refresh(slot);
    else this.backup.refresh(-slot - 1);
  }

  timing(server: ServerState, ms: number, lastByte: boolean): void {
    if (lastByte !== this.lastByte) return;
    observeLatency(server, ms, performance.now());
    this.loadChanged(server);
  }

  explain(server: ServerState): string {
    if (server === this.explored) return `${this.name}: measuring again (not measured for over ${STALE_MS} ms): ${server.peakEwmaMs.toFixed(1)} ms peak-EWMA before`;
    return `${this.name}: ${server.peakEwmaMs.toFixed(1)} ms peak-EWMA, ${loadOf(server)} in flight with this one${server.backup ? ', backup' : ''}`;
  }
}

export const leastTime =
  (lastByte: boolean) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new LeastTimePolicy(snapshot, lastByte);
