/**
 * The balancing policy interface. A policy is small and pure: it picks from a
 * snapshot of the group's servers and never judges health itself; it asks
 * `usable()` (server.isAvailable(now): not down, not drained, not failed,
 * healthy, not full; and not already tried). Weight work happens when the
 * snapshot is built, not per request.
 *
 * Retries call pick() again with the servers already tried, so a policy
 * yields an ordered sequence of distinct candidates for one request: a retry
 * never goes back to a server that already failed it.
 *
 * Backup servers are used only when no primary is available (nginx).
 *
 * Policies are rebuilt whenever the snapshot changes (reload, membership
 * change, a slow_start step); state that must outlive that (load, latency,
 * health) lives in the ServerStates.
 */
import type { VariableContext } from '../variables/context.js';
import type { ServerState } from '../upstream/server-state.js';

/** The servers of one upstream group as a policy sees them. */
export interface ServerSnapshot {
  readonly primary: readonly ServerState[];
  readonly backup: readonly ServerState[];
  /**
   * Effective weights, index for index (slow_start lowers a recovering
   * server's for a while). Absent: each server's configured weight.
   */
  readonly primaryWeights?: readonly number[] | undefined;
  readonly backupWeights?: readonly number[] | undefined;
  /** The upstream group's name, so workers can share a rotation's position (round-robin.ts). */
  readonly group?: string | undefined;
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
  /** Panic mode (src/balancer/panic.ts): health verdicts are ignored for this pick. */
  readonly panic?: boolean;
}

export interface BalancingPolicy {
  readonly name: string;
  /** The next candidate for this request, or undefined when none is usable. */
  pick(request: PickRequest, tried: Tried): ServerState | undefined;
  /**
   * Why `server` was chosen for this request, in a few words, for the debug
   * header ("least connections: 0 active, weight 1"). Only called when
   * debug_header is on.
   */
  explain?(server: ServerState, request: PickRequest): string;
}

/** Builds a policy for a snapshot; called again whenever the snapshot changes. */
export type PolicyFactory = (snapshot: ServerSnapshot) => BalancingPolicy;

/**
 * Whether `server` may take this request. The panic branch is only reached
 * for servers that are not available, so the usual case costs nothing more.
 */
export function usable(server: ServerState, request: PickRequest, tried: Tried): boolean {
  if (!server.isAvailable(request.now) && !(request.panic === true && server.isUsableInPanic())) return false;
  return tried.length === 0 || !tried.includes(server);
}

/** Weights of a tier: the snapshot's effective ones, or the servers' own. */
export function tierWeights(servers: readonly ServerState[], weights: readonly number[] | undefined): number[] {
  return weights !== undefined ? weights.slice() : servers.map((s) => s.weight);
}

/** Greatest common divisor, to shrink weight tables (weights 10,20,30 act like 1,2,3). */
export function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Requests in flight to a server from every worker process. */
export function loadOf(server: ServerState): number {
  return server.active + server.remoteActive;
}
