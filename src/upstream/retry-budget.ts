/**
 * A retry budget (Envoy's and Linkerd's idea): retries to an upstream may
 * add at most `percent` of the requests it got in the last `window`, plus
 * `min` retries per second whatever the traffic. When an upstream fails,
 * nginx retries every failed request on the next server, doubling (or more)
 * the load on servers that are already struggling; with a budget, the retry
 * storm is capped and the clients get the error instead.
 *
 * Nothing is counted per request: the servers' own counters (`requests`,
 * `retries`, cumulative) are summed every window/10 (a timer of the group)
 * and when a retry is considered, and compared with the snapshot from one
 * window ago. So the hot path pays nothing, and a retry costs an O(servers)
 * sum.
 */
import type { RetryBudgetConfig } from '../config/schema.js';
import { log } from '../log/error-log.js';
import { DOUBLE_ZERO } from '../runtime/double-zero.js';
import type { ServerState } from './server-state.js';

const SLOTS = 10;

export class RetryBudget {
  readonly percent: number;
  readonly minPerSecond: number;
  readonly windowMs: number;
  /** Snapshots of (time, first attempts, retries), oldest first. */
  private readonly times: number[] = [];
  private readonly firsts: number[] = [];
  private readonly retried: number[] = [];
  /** When a retry was last refused (performance.now()), 0 = never. */
  deniedAt = DOUBLE_ZERO;
  /** Retries refused so far. */
  denied = 0;
  private loggedAt = -Infinity;

  constructor(
    config: RetryBudgetConfig,
    readonly upstream = '',
  ) {
    this.percent = config.percent;
    this.minPerSecond = config.min;
    this.windowMs = config.window;
  }

  /**
   * Whether one more retry fits the budget at `now`, for an upstream whose
   * servers are `servers`. A retry that is allowed is counted by the caller
   * (the exchange increments `server.retries` when it sends it).
   */
  allow(now: number, servers: readonly ServerState[]): boolean {
    const { firsts, retries } = this.sample(now, servers);
    // The oldest snapshot still inside the window; if none, the newest older one.
    let base = 0;
    while (base + 1 < this.times.length && this.times[base + 1]! <= now - this.windowMs) base++;
    const spanMs = Math.max(now - this.times[base]!, 1000);
    const requests = Math.max(0, firsts - this.firsts[base]!);
    const used = Math.max(0, retries - this.retried[base]!);
    const allowed = Math.max((this.minPerSecond * Math.min(spanMs, this.windowMs)) / 1000, (this.percent / 100) * requests);
    if (used + 1 <= allowed) return true;
    this.deniedAt = now;
    this.denied++;
    if (this.shouldLog(now)) {
      log().warn(
        { upstream: this.upstream, retries: used, requests, retry_budget: `${this.percent}%`, window_ms: this.windowMs },
        'retry budget exhausted: failed requests are not retried for now',
      );
    }
    return false;
  }

  /** True once per window after a refusal, so the log says it without flooding. */
  shouldLog(now: number): boolean {
    if (now - this.loggedAt < this.windowMs) return false;
    this.loggedAt = now;
    return true;
  }

  /**
   * Sums the servers' counters and keeps a snapshot when the last one is
   * window/10 old. The group calls it on a timer too, so the window also
   * covers the requests before the first retry.
   */
  sample(now: number, servers: readonly ServerState[]): { firsts: number; retries: number } {
    let attempts = 0;
    let retries = 0;
    for (let i = 0; i < servers.length; i++) {
      attempts += servers[i]!.requests;
      retries += servers[i]!.retries;
    }
    const firsts = attempts - retries;
    this.record(now, firsts, retries);
    return { firsts, retries };
  }

  private record(now: number, firsts: number, retries: number): void {
    const last = this.times.length - 1;
    if (last >= 0 && now - this.times[last]! < this.windowMs / SLOTS) return;
    this.times.push(now);
    this.firsts.push(firsts);
    this.retried.push(retries);
    // Keep the newest snapshot older than the window and everything after it.
    while (this.times.length > 2 && this.times[1]! <= now - this.windowMs) {
      this.times.shift();
      this.firsts.shift();
      this.retried.shift();
    }
  }
}
