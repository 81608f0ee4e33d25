/**
 * random (nginx): each request goes to a server drawn at random with
 * probability proportional to its weight. Sampling is O(1) (an alias table,
 * src/balancer/alias.ts). An unusable or already tried server is drawn again,
 * up to 20 times as nginx does; then, where nginx gives up with 502, the
 * servers are scanned from a random point, so a usable one is always found.
 * Backup servers are not allowed with random (as in nginx).
 */
import { AliasTable } from '../alias.js';
import type { Random } from '../rng.js';
import { tierWeights, usable, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { ServerState } from '../../upstream/server-state.js';

export const MAX_DRAWS = 20;

/** Weighted random draws over one set of servers; shared by random and random two. */
export class WeightedDraw {
  readonly table: AliasTable;
  readonly weights: number[];

  constructor(
    readonly servers: readonly ServerState[],
    weights: readonly number[] | undefined,
    private readonly random: Random,
  ) {
    this.weights = tierWeights(servers, weights);
    this.table = new AliasTable(this.weights);
  }

  /** A usable server other than `not`, drawn by weight; undefined when there is none. Returns its index. */
  draw(request: PickRequest, tried: Tried, not: number): number {
    const servers = this.servers;
    const n = servers.length;
    if (n === 0) return -1;
    for (let i = 0; i < MAX_DRAWS; i++) {
      const k = this.table.sample(this.random());
      if (k !== not && usable(servers[k]!, request, tried)) return k;
    }
    const start = (this.random() * n) | 0;
    for (let i = 0; i < n; i++) {
      const k = start + i < n ? start + i : start + i - n;
      if (k !== not && usable(servers[k]!, request, tried)) return k;
    }
    return -1;
  }
}

export class RandomPolicy implements BalancingPolicy {
  readonly name = 'random';
  private readonly draws: WeightedDraw;

  constructor(snapshot: ServerSnapshot, random: Random = Math.random) {
    this.draws = new WeightedDraw(snapshot.primary, snapshot.primaryWeights, random);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const k = this.draws.draw(request, tried, -1);
    return k < 0 ? undefined : this.draws.servers[k];
  }

  explain(): string {
    return 'random, by weight';
  }
}

export const random = (snapshot: ServerSnapshot): BalancingPolicy => new RandomPolicy(snapshot);
