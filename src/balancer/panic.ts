/**
 * Panic mode (Envoy's panic threshold): when fewer than `threshold` percent
 * of an upstream's primary servers are healthy, the few healthy ones would
 * get all the traffic and likely fall over too; instead the request is
 * balanced over every primary server, healthy or not, as if health checks
 * said nothing. Servers the operator took out (`down`, `drain`) and full
 * ones (max_conns) stay out.
 *
 * Off by default (threshold 0): nginx sends everything to the healthy
 * servers and answers 502 when there is none. Panic starts only when no
 * backup server is available either, so backups keep their nginx meaning.
 *
 * The healthy share is an O(n) count, so it is cached: recounted when a
 * health event happened (healthEpoch) or RECOUNT_MS passed (a passive
 * fail_timeout expiring is not an event).
 */
import { healthEpoch } from '../health/passive.js';
import { log } from '../log/error-log.js';
import type { ServerState } from '../upstream/server-state.js';
import type { BalancingPolicy, PickRequest, ServerSnapshot, Tried } from './policy.js';

const RECOUNT_MS = 250;

/** Panic state of one upstream, kept across snapshots so transitions are logged once. */
export class PanicState {
  panicking = false;
  healthy = 0;
  eligible = 0;
  countedAt = -Infinity;
  epoch = -1;

  constructor(
    readonly upstream: string,
    readonly threshold: number,
  ) {}
}

export class PanicGuard implements BalancingPolicy {
  readonly name: string;

  constructor(
    private readonly snapshot: ServerSnapshot,
    private readonly inner: BalancingPolicy,
    readonly state: PanicState,
  ) {
    this.name = inner.name;
    state.countedAt = -Infinity;
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    if (!this.inPanic(request.now)) return this.inner.pick(request, tried);
    return this.inner.pick({ vars: request.vars, now: request.now, panic: true }, tried);
  }

  inPanic(now: number): boolean {
    const state = this.state;
    const epoch = healthEpoch();
    if (epoch === state.epoch && now - state.countedAt < RECOUNT_MS) return state.panicking;
    state.epoch = epoch;
    state.countedAt = now;
    let eligible = 0;
    let healthy = 0;
    for (const s of this.snapshot.primary) {
      if (s.configDown || s.drain) continue;
      eligible++;
      if (s.healthy && !s.isFailed(now)) healthy++;
    }
    let panicking = eligible > 0 && healthy * 100 < state.threshold * eligible;
    if (panicking) for (const s of this.snapshot.backup) if (s.isAvailable(now)) panicking = false;
    state.eligible = eligible;
    state.healthy = healthy;
    if (panicking !== state.panicking) {
      state.panicking = panicking;
      const fields = { upstream: state.upstream, healthy, servers: eligible, panic_threshold: state.threshold };
      if (panicking) log().warn(fields, 'upstream in panic mode: balancing over all servers, healthy or not');
      else log().warn(fields, 'upstream left panic mode');
    }
    return panicking;
  }

  explain(server: ServerState, request: PickRequest): string {
    const inner = this.inner.explain?.(server, request) ?? this.inner.name;
    const s = this.state;
    return s.panicking ? `panic mode (${s.healthy}/${s.eligible} healthy < ${s.threshold}%): ${inner}` : inner;
  }
}

export const panicGuard =
  (state: PanicState, inner: (snapshot: ServerSnapshot) => BalancingPolicy) =>
  (snapshot: ServerSnapshot): BalancingPolicy =>
    new PanicGuard(snapshot, inner(snapshot), state);
