/**
 * The balancing policy interface. A policy is small and pure: it picks from a
 * snapshot of the group's servers and never judges health itself; it asks
 * `server.isAvailable(now)` (not down, not drained, not failed, healthy, not
 * full). Weight work happens when the snapshot is built, not per request.
 *
 * Retries call pick() again with the servers already tried, so a policy
 * yields an ordered sequence of distinct candidates for one request: a retry
 * never goes back to a server that already failed it.
 *
 * Backup servers are used only when no primary is available (nginx).
 */
import type { VariableContext } from '../variables/context.js';
import type { ServerState } from '../upstream/server-state.js';

/** The servers of one upstream group as a policy sees them. */
export interface ServerSnapshot {
  readonly primary: readonly ServerState[];
  readonly backup: readonly ServerState[];
}

/** Servers already tried for this request. Tiny: linear search beats hashing at these sizes. */
export interface Tried {
  readonly length: number;
  includes(server: ServerState): boolean;
}

export const NONE_TRIED: Tried = { length: 0, includes: () => false };

export interface PickRequest {
  /** Variables for hash keys ($remote_addr, $request_uri, $cookie_x...). */
  readonly vars: VariableContext;
  readonly now: number;
}

export interface BalancingPolicy {
  readonly name: string;
  /** The next candidate for this request, or undefined when none is usable. */
  pick(request: PickRequest, tried: Tried): ServerState | undefined;
}

/** Builds a policy for a snapshot; called again whenever the snapshot changes. */
export type PolicyFactory = (snapshot: ServerSnapshot) => BalancingPolicy;

export function usable(server: ServerState, request: PickRequest, tried: Tried): boolean {
  return server.isAvailable(request.now) && (tried.length === 0 || !tried.includes(server));
}

/** Greatest common divisor, to shrink weight tables (weights 10,20,30 act like 1,2,3). */
export function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
