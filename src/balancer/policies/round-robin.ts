/**
 * Smooth weighted round robin, nginx's default method
 * (ngx_http_upstream_get_peer): each pick adds every server's weight to its
 * current weight, takes the largest, and subtracts the total from it. Weights
 * 5,1,1 give a a b a c a a, spreading the heavy server's turns instead of
 * sending five in a row.
 *
 * The sequence only depends on the weights, so it is computed once per
 * snapshot (sum of weights / gcd entries) and a pick is an index step: O(1)
 * per request whatever the number of servers, where nginx is O(n). Servers
 * that are unavailable or already tried are skipped in sequence order, so the
 * remaining servers keep their relative shares. Above MAX_TABLE entries the
 * table would cost too much memory and the policy falls back to nginx's
 * O(n) loop.
 */
import { gcd, tierWeights, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { ServerState } from '../../upstream/server-state.js';

const MAX_TABLE = 1 << 16;

/** The smooth weighted sequence for `weights`, as indexes. */
export function smoothWeightedSequence(weights: readonly number[]): number[] {
  const n = weights.length;
  if (n === 0) return [];
  const divisor = weights.reduce((a, b) => gcd(a, b));
  const w = weights.map((x) => x / divisor);
  const total = w.reduce((a, b) => a + b, 0);
  const current = new Array<number>(n).fill(0);
  const out: number[] = [];
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < n; i++) {
      current[i]! += w[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}

/**
 * One tier (primary or backup) of servers in smooth weighted order. Other
 * policies use it too, as nginx does, when their own method finds nothing
 * (hash and ip_hash after 20 tries).
 */
/**
 * With several worker processes each has its own rotation, and connections
 * reach workers as the kernel decides: requests that come one at a time on
 * new connections (what a person or a test does) would not see "1, 2, 3" but
 * whatever order the workers' rotations interleave in. So a worker shares its
 * position after a pick that came after a quiet moment (SPARSE_MS without a
 * pick): one message through the supervisor then, none under load, when
 * picks come microseconds apart and only the shares matter.
 */
const SPARSE_MS = 1;
let positionSink: ((key: string, cursor: number) => void) | undefined;
/** The live rotation for each key, for positions arriving from other workers. */
const rotations = new Map<string, Rotation>();

/** Set in worker processes: where to send a rotation's position after a sparse pick. */
export function setRotationPositionSink(sink: ((key: string, cursor: number) => void) | undefined): void {
  positionSink = sink;
}

/**
 * A position another worker reached: continue from there, unless this worker
 * is busy picking itself (then its own cycle keeps the shares exact).
 */
export function applyRotationPosition(key: string, cursor: number, now: number): void {
  rotations.get(key)?.moveTo(cursor, now);
}

export class Rotation {
  private readonly table: Uint32Array | undefined;
  private cursor = 0;
  private lastPick = -Infinity;
  /** Fallback state for huge weight sums: nginx's running current weights. */
  private readonly current: Float64Array;
  private readonly weights: readonly number[];

  constructor(
    private readonly servers: readonly ServerState[],
    weights?: readonly number[],
    /** `${group}:primary` / `${group}:backup` when the position is shared between workers. */
    private readonly key?: string,
  ) {
    const w = tierWeights(servers, weights);
    this.weights = w;
    this.current = new Float64Array(servers.length);
    const total = w.reduce((a, b) => a + b, 0);
    if (servers.length > 0 && total / w.reduce((a, b) => gcd(a, b)) <= MAX_TABLE) {
      this.table = Uint32Array.from(smoothWeightedSequence(w));
    }
    if (key !== undefined) rotations.set(key, this);
  }

  moveTo(cursor: number, now: number): void {
    if (now - this.lastPick < SPARSE_MS) return;
    if (this.table !== undefined && cursor >= 0 && cursor < this.table.length) this.cursor = cursor;
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    if (servers.length === 0) return undefined;
    const table = this.table;
    if (table === undefined) return this.pickDynamic(request, tried);
    const len = table.length;
    for (let step = 0; step < len; step++) {
      const server = servers[table[this.cursor]!]!;
      this.cursor = this.cursor + 1 === len ? 0 : this.cursor + 1;
      if (usable(server, request, tried)) {
        if (positionSink !== undefined && this.key !== undefined) this.share(request.now);
        return server;
      }
    }
    return undefined;
  }

  private share(now: number): void {
    if (now - this.lastPick >= SPARSE_MS) positionSink!(this.key!, this.cursor);
    this.lastPick = now;
  }

  private pickDynamic(request: PickRequest, tried: Tried): ServerState | undefined {
    const servers = this.servers;
    let best = -1;
    let total = 0;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      if (!usable(s, request, tried)) continue;
      const w = this.weights[i]!;
      this.current[i]! += w;
      total += w;
      if (best < 0 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best < 0) return undefined;
    this.current[best]! -= total;
    return servers[best];
  }
}

export class RoundRobinPolicy implements BalancingPolicy {
  readonly name = 'round_robin';
  private readonly primary: Rotation;
  private readonly backup: Rotation;

  constructor(snapshot: ServerSnapshot) {
    const group = snapshot.group;
    this.primary = new Rotation(snapshot.primary, snapshot.primaryWeights, group === undefined ? undefined : `${group}:primary`);
    this.backup = new Rotation(snapshot.backup, snapshot.backupWeights, group === undefined ? undefined : `${group}:backup`);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    return this.primary.pick(request, tried) ?? this.backup.pick(request, tried);
  }

  explain(server: ServerState): string {
    return server.backup ? 'round robin (backup: no primary available)' : 'round robin';
  }
}

export const roundRobin = (snapshot: ServerSnapshot): BalancingPolicy => new RoundRobinPolicy(snapshot);
