/**
 * Messages between the supervisor (cluster primary) and its workers.
 */
import type { HealthVerdict } from '../health/active.js';
import type { PassiveOp } from '../health/passive.js';
import type { DiscoveredServer, MembershipState, OpResult, ServerOp } from '../runtime/membership.js';
import type { RuntimeReport } from '../runtime/report.js';

export type ToWorker =
  | { type: 'reload' }
  | { type: 'shutdown' }
  | { type: 'reopen-logs' }
  | { type: 'passive'; op: PassiveOp }
  /** Active health verdicts from the supervisor, which runs the only probes (src/lifecycle/cluster-health.ts). */
  | { type: 'health'; verdicts: HealthVerdict[] }
  /** Another worker's round-robin position after a sparse pick (src/balancer/policies/round-robin.ts). */
  | { type: 'rotation'; key: string; cursor: number }
  /** The other workers' client connections (src/lifecycle/connection-spread.ts). */
  | { type: 'sibling-connections'; counts: [id: number, connections: number][] }
  /** A connection another worker accepted and hands to this one (the message's handle), for the listener `key`. */
  | { type: 'adopt-connection'; key: string }
  | OpsToWorker;

export type FromWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; error: string }
  | { type: 'reloaded' }
  | { type: 'reload-failed'; error: string }
  | { type: 'passive'; op: PassiveOp }
  | { type: 'rotation'; key: string; cursor: number }
  /** This worker's client connections, sent every ~100 ms while they change. */
  | { type: 'connections'; count: number }
  /** A connection just accepted on listener `key` (the message's handle), for worker `to`. */
  | { type: 'hand-over'; key: string; to: number }
  | OpsFromWorker;

// ---- operations (src/admin, src/discovery, binary upgrade): one state in every worker

/** Supervisor -> worker. */
export type OpsToWorker =
  /** The answer to 'init-request'; the worker compiles its first table with it. */
  | { type: 'init'; membership: MembershipState }
  /** A discovery source's current servers (null: the source is gone). */
  | { type: 'discovered'; upstream: string; source: string; servers: DiscoveredServer[] | null }
  /** An admin API change, answered with 'server-op-result'. */
  | { type: 'server-op'; id: number; op: ServerOp }
  /** Requests in flight from the other workers, by server key (least_conn and friends use active + remoteActive). */
  | { type: 'remote-load'; load: [key: string, active: number][] }
  /** Answered with 'report'. */
  | { type: 'report-request'; id: number }
  /** Answered with one 'listen-fd' message per listening socket (the socket is the message's handle), then 'listen-fds-done'. */
  | { type: 'listen-fds-request'; id: number }
  /** Like 'shutdown', after a binary upgrade: keep-alive clients are given a moment to leave before idle connections close. */
  | { type: 'handover-stop' };

/** Worker -> supervisor. */
export type OpsFromWorker =
  /** Sent once the worker listens for messages (an ES module worker would miss a message sent at fork time); answered with 'init'. */
  | { type: 'init-request' }
  | { type: 'server-op-result'; id: number; result: OpResult }
  /** This worker's requests in flight by server key, sent every ~100 ms while they change. */
  | { type: 'load'; load: [key: string, active: number][] }
  | { type: 'report'; id: number; report: RuntimeReport }
  | { type: 'listen-fd'; id: number; key: string }
  | { type: 'listen-fds-done'; id: number; count: number };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export const isToWorker = isFromWorker as (m: unknown) => m is ToWorker;
