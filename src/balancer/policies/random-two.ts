/**
 * random two [least_conn | least_time] (nginx; "the power of two choices"):
 * draw two distinct usable servers by weight and send the request to the
 * less loaded one: fewer requests in flight per weight (least_conn, the
 * default; every worker's requests count) or the lower expected wait
 * (least_time: peak-EWMA latency times requests in flight, see
 * src/balancer/peak-ewma.ts). O(1) per pick, and no shared ordering to keep
 * up to date, which is why Envoy and Linkerd use it at scale.
 *
 * With least_time, one pick in EXPLORE_EVERY takes the first draw as it is
 * if that server was not measured for STALE_MS, so a server that was slow is
 * measured again about once a second.
 */
import { STALE_MS, observeLatency, timeCost } from '../peak-ewma.js';
import { loadOf, type BalancingPolicy, type PickRequest, type ServerSnapshot, type Tried } from '../policy.js';
import type { Random } from '../rng.js';
import type { LoadWatcher, ServerState } from '../../upstream/server-state.js';
import { WeightedDraw } from './random.js';
import { EXPLORE_EVERY } from './least-time.js';

export type TwoChoice = 'least_conn' | 'least_time';

export class RandomTwoPolicy implements BalancingPolicy, LoadWatcher {
  readonly name: string;
  private readonly draws: WeightedDraw;
  private picks = 0;
  private readonly exploredAt: Float64Array;

  constructor(
    snapshot: ServerSnapshot,
    private readonly choose: TwoChoice,
    private readonly lastByte: boolean,
    random: Random = Math.random,
  ) {
    this.name = `random two ${choose}`;
    this.draws = new WeightedDraw(snapshot.primary, snapshot.primaryWeights, random);
    this.exploredAt = new Float64Array(snapshot.primary.length).fill(-Infinity);
    if (choose === 'least_time') for (const s of snapshot.primary) s.watcher = this;
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    const draws = this.draws;
    const a = draws.draw(request, tried, -1);
    if (a < 0) return undefined;
    if (this.choose === 'least_time' && ++this.picks >= EXPLORE_EVERY) {
      // The first draw, if it has not been measured for a while, gets this request (see least-time.ts).
      this.picks = 0;
      const s = draws.servers[a]!;
      if (s.peakEwmaMs !== 0 && request.now - s.peakEwmaAt >= STALE_MS && request.now - this.exploredAt[a]! >= STALE_MS) {
        this.exploredAt[a] = request.now;
        return s;
      }
    }
    const b = draws.draw(request, tried, a);
    if (b < 0) return draws.servers[a];
    return this.cost(b) < this.cost(a) ? draws.servers[b] : draws.servers[a];
  }

  private cost(k: number): number {
    const s = this.draws.servers[k]!;
    const w = this.draws.weights[k]!;
    return this.choose === 'least_conn' ? loadOf(s) / w : timeCost(s, w);
  }

  loadChanged(): void {}

  timing(server: ServerState, ms: number, lastByte: boolean): void {
    if (lastByte === this.lastByte) observeLatency(server, ms, performance.now());
  }

  explain(server: ServerState): string {
    return this.choose === 'least_conn'
      ? `the less loaded of two random draws: ${loadOf(server)} in flight with this one`
      : `the faster of two random draws: ${server.peakEwmaMs.toFixed(1)} ms peak-EWMA, ${loadOf(server)} in flight with this one`;
  }
}

export const randomTwo =
  (choose: TwoChoice, lastByte: boolean) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new RandomTwoPolicy(snapshot, choose, lastByte);
