/**
 * Passive health with nginx's exact max_fails / fail_timeout semantics
 * (ngx_http_upstream_round_robin.c, get_peer and free_peer):
 *
 *  - on selection: if fail_timeout has passed since `checked`, a new window
 *    starts (`checked = now`);
 *  - on failure: fails++, accessed = checked = now; with fails >= max_fails
 *    the server is skipped until fail_timeout has passed since `checked`;
 *  - on success: fails is reset only if the last failure is older than the
 *    current window (accessed < checked), so max_fails failures within
 *    fail_timeout take a server out even with successes in between;
 *  - after fail_timeout a failed server gets traffic again; one more failure
 *    takes it out for another fail_timeout, one success restores it.
 *  - the only server of a group is never taken out (nginx's `single`).
 *
 * What counts as a failure is decided by the proxy (src/proxy/outcome.ts):
 * connect errors, timeouts and invalid responses always; http_5xx statuses
 * only when proxy_next_upstream lists them; a client that hangs up never.
 */
import type { ServerState } from '../upstream/server-state.js';

export type HealthListener = (event: HealthEvent) => void;

export interface HealthEvent {
  server: ServerState;
  state: 'down' | 'up';
  source: 'passive' | 'active' | 'admin';
  reason: string;
  at: number;
  /** Applied from another worker's report: logged there, not again here. */
  remote?: boolean;
}

const listeners: HealthListener[] = [];

/**
 * A passive-health state change, as shared between worker processes: every
 * worker applies the same operations, so all agree on which servers are out
 * (what nginx needs a shared-memory `zone` for). Changes are rare (failures,
 * window starts, recoveries), so one IPC message each costs nothing.
 */
export interface PassiveOp {
  kind: 'failure' | 'window' | 'reset';
  key: string;
  reason?: string;
}

let opSink: ((op: PassiveOp) => void) | undefined;

/** Where local changes are published (the worker's channel to the supervisor). */
export function setPassiveOpSink(sink: ((op: PassiveOp) => void) | undefined): void {
  opSink = sink;
}

/** Applies a change made by another worker, without publishing it again. */
export function applyPassiveOp(server: ServerState, op: PassiveOp, now: number): void {
  const sink = opSink;
  opSink = undefined;
  applyingRemote = true;
  try {
    if (op.kind === 'failure') recordFailure(server, now, op.reason ?? 'failure in another worker', false);
    else if (op.kind === 'window') server.checked = now;
    else resetFailures(server, now);
  } finally {
    opSink = sink;
    applyingRemote = false;
  }
}

/** Subscribe to health transitions (logs, metrics, status page). */
export function onHealthEvent(listener: HealthListener): () => void {
  listeners.push(listener);
  return () => {
    const i = listeners.indexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  };
}

let applyingRemote = false;
let epoch = 0;

/** Increases with every health transition; cached health-derived state (panic mode) compares it. */
export function healthEpoch(): number {
  return epoch;
}

export function emitHealthEvent(event: HealthEvent): void {
  if (applyingRemote) event.remote = true;
  epoch++;
  if (event.state === 'up') event.server.recoveredAt = event.at;
  for (const l of listeners) l(event);
  // slow_start: the group using the server ramps its weight up from here.
  if (event.state === 'up' && event.server.isAvailable(event.at)) event.server.owner?.serverRecovered(event.server, event.at);
}

export function noteSelected(server: ServerState, now: number): void {
  // A new fail_timeout window starts. For a failed server this is its one
  // trial request: until it succeeds, isFailed() is true again for others.
  // The store runs on every call rather than in a branch: V8 optimizes the
  // request path early, and a store it has never seen run deoptimizes that
  // whole path when it first runs (here: when the first window ends, while
  // traffic flows), then recompiles it on the proxy's own core.
  const starts = now - server.checked > server.failTimeoutMs;
  server.checked = starts ? now : server.checked;
  if (server.fails !== 0 && starts) opSink?.({ kind: 'window', key: server.key });
}

export function noteFailure(server: ServerState, now: number, reason: string): void {
  recordFailure(server, now, reason, true);
}

function recordFailure(server: ServerState, now: number, reason: string, local: boolean): void {
  if (local) {
    server.failures++;
    opSink?.({ kind: 'failure', key: server.key, reason });
  }
  server.fails++;
  server.accessed = now;
  server.checked = now;
  server.lastFailure = reason;
  server.lastFailureAt = now;
  if (server.maxFails !== 0 && server.fails >= server.maxFails && !server.single && server.failedSince === 0) {
    server.failedSince = now;
    emitHealthEvent({
      server,
      state: 'down',
      source: 'passive',
      reason: `${server.fails} failure(s) within fail_timeout (last: ${reason}); not used for ${server.failTimeoutMs}ms`,
      at: now,
    });
  }
}

export function noteSuccess(server: ServerState, now: number): void {
  if (server.accessed < server.checked && server.fails !== 0) {
    opSink?.({ kind: 'reset', key: server.key });
    resetFailures(server, now);
  }
}

function resetFailures(server: ServerState, now: number): void {
  server.fails = 0;
  if (server.failedSince !== 0) {
    server.failedSince = 0;
    emitHealthEvent({ server, state: 'up', source: 'passive', reason: 'a request succeeded after fail_timeout', at: now });
  }
}
