/**
 * Balancing decisions made visible: with `debug_header on`, responses carry
 *
 *   X-Fulcrum-Upstream: 127.0.0.1:8082, 127.0.0.1:8081      (the servers tried, nginx's $upstream_addr)
 *   X-Fulcrum-Decision: least_conn; 127.0.0.1:8081 answered: least connections: 1 in flight with this one, weight 1;
 *     tried 127.0.0.1:8082 (failed: connect ECONNREFUSED); skipped 127.0.0.1:8083 (down since
 *     2025-01-01T10:00:00.000Z after 3 failures within fail_timeout, last: status 502),
 *     127.0.0.1:8084 (unhealthy since ...: 3 failed health checks, last: status 503 on GET /healthz),
 *     127.0.0.1:8085 (draining), 127.0.0.1:8086 (full: 10 of max_conns 10)
 *
 * (one line). Servers that were usable but not chosen are not listed: the
 * method's reason for its choice says why. Built only when debug_header is
 * on, so it may take O(servers).
 */
import type { PickRequest } from '../balancer/policy.js';
import type { UpstreamGroup } from '../upstream/group.js';
import type { ServerState } from '../upstream/server-state.js';

export interface AttemptLike {
  readonly server: ServerState;
  /** 0 when the attempt got no response head. */
  readonly status: number;
}

/** An ISO time for a performance.now() timestamp. */
export function wallClock(t: number): string {
  return new Date(performance.timeOrigin + t).toISOString();
}

/** Why `server` cannot take a request now, or undefined if it can. */
export function skipReason(server: ServerState, now: number): string | undefined {
  switch (server.unavailability(now)) {
    case 'config-down':
      return 'down (config or admin API)';
    case 'drain':
      return 'draining: only its sticky sessions';
    case 'unhealthy':
      return `unhealthy since ${wallClock(server.healthChangedAt)}: ${server.healthReason || 'active health check'}`;
    case 'failed':
      return `down since ${wallClock(server.failedSince || server.checked)} after ${server.fails} failure(s) within fail_timeout, last: ${server.lastFailure || 'unknown'}; retried after ${Math.max(0, Math.ceil(server.failTimeoutMs - (now - server.checked)))} ms`;
    case 'full':
      return `full: ${server.active} of max_conns ${server.maxConns}`;
    case 'unresolved':
      return 'address not resolved';
    default:
      return undefined;
  }
}

export function decisionHeader(group: UpstreamGroup, attempts: readonly AttemptLike[], answered: ServerState | undefined, request: PickRequest, budgetDenied: boolean): string {
  const now = request.now;
  const parts: string[] = [group.method];
  if (answered !== undefined) parts.push(`${answered.label} answered: ${group.policy.explain?.(answered, request) ?? group.policy.name}`);
  else parts.push('no server answered');
  const failed = attempts.filter((a) => a.server !== answered || a.status === 0);
  if (failed.length > 0) {
    parts.push(
      'tried ' +
        failed
          .map((a) => `${a.server.label} (${a.status === 0 ? `failed: ${a.server.lastFailure || 'error'}` : `status ${a.status}`})`)
          .join(', '),
    );
  }
  const skipped: string[] = [];
  for (const s of group.servers) {
    if (s === answered || attempts.some((a) => a.server === s)) continue;
    const why = skipReason(s, now);
    if (why !== undefined) skipped.push(`${s.label} (${why})`);
  }
  if (skipped.length > 0) parts.push('skipped ' + skipped.join(', '));
  if (budgetDenied) parts.push('no retry: retry budget exhausted');
  // One header line: no control characters.
  return parts.join('; ').replace(/[^\x20-\x7e]/g, '?');
}
