/**
 * Keep-alive connections to one upstream server.
 *
 * Idle connections are kept on a stack (the most recently used is reused
 * first, so the rest age out). A connection is not reused when it has been
 * idle for longer than the server said it would keep it (`Keep-Alive:
 * timeout=N`, minus a safety margin) or than the upstream's keepalive_timeout:
 * that is what makes the classic race with Node backends (5 s keep-alive)
 * rare. The race that remains is handled by the proxy, which retries an
 * idempotent request on a fresh connection when a reused one fails before
 * any response byte.
 */
import type { UpstreamConnection } from './connection.js';

export interface PoolLimits {
  /** Most idle connections kept for the whole upstream group (nginx `keepalive`); 0 = no reuse. */
  maxIdle: number;
  /** nginx upstream `keepalive_timeout`. */
  idleTimeoutMs: number;
  /** nginx upstream `keepalive_requests`. */
  maxRequests: number;
  /** nginx upstream `keepalive_time`. */
  maxLifetimeMs: number;
}

/** Subtracted from the upstream's Keep-Alive timeout hint to leave room for clock skew and transit. */
export const KEEPALIVE_HINT_MARGIN_MS = 1000;

/** Shared by the pools of one upstream group: nginx's `keepalive N` caps the group, not each server. */
export class IdleBudget {
  idle = 0;
  constructor(public limits: PoolLimits) {}
}

export class ConnectionPool {
  private readonly idle: UpstreamConnection[] = [];

  constructor(public budget: IdleBudget) {}

  get idleCount(): number {
    return this.idle.length;
  }

  /** Takes a reusable idle connection, or returns undefined (the caller opens a new one). */
  acquire(now: number): UpstreamConnection | undefined {
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      this.budget.idle--;
      if (this.stillFresh(conn, now)) return conn;
      conn.destroy();
    }
    return undefined;
  }

  /**
   * Returns a connection after a complete exchange; closes it if it may not
   * be reused. The `keepalive N` cap is enforced by sweep(), not here: when a
   * burst of responses completes together, closing the connections above the
   * cap at once only to open new ones for the next burst is what makes nginx
   * open a connection for a quarter of its requests at 200 clients with
   * `keepalive 64`. fulcrum lets the cap be exceeded for up to one sweep
   * (100 ms) and then closes the least recently used.
   */
  release(conn: UpstreamConnection, now: number): void {
    const limits = this.budget.limits;
    if (!conn.reusable || conn.closed || limits.maxIdle === 0 || conn.requests >= limits.maxRequests || now - conn.createdAt >= limits.maxLifetimeMs) {
      conn.destroy();
      return;
    }
    conn.markIdle(now);
    this.idle.push(conn);
    this.budget.idle++;
  }

  /** Called when a connection closes by itself (idle ones the upstream closed). */
  forget(conn: UpstreamConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) {
      this.idle.splice(i, 1);
      this.budget.idle--;
    }
  }

  /** Closes idle connections that timed out, then the oldest ones above the group's cap; called by the periodic sweep. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i]!;
      if (!this.stillFresh(conn, now)) this.evict(i);
    }
    // The stack's bottom holds the least recently used.
    while (this.budget.idle > this.budget.limits.maxIdle && this.idle.length > 0) this.evict(0);
  }

  private evict(index: number): void {
    const conn = this.idle[index]!;
    this.idle.splice(index, 1);
    this.budget.idle--;
    conn.destroy();
  }

  closeAll(): void {
    for (const conn of [...this.idle]) conn.destroy();
  }

  private stillFresh(conn: UpstreamConnection, now: number): boolean {
    if (conn.closed || !conn.reusable) return false;
    const idleFor = now - conn.idleSince;
    if (idleFor >= this.budget.limits.idleTimeoutMs) return false;
    const hint = conn.head.keepAliveTimeoutMs;
    if (hint >= 0 && idleFor >= hint - KEEPALIVE_HINT_MARGIN_MS) return false;
    return true;
  }
}
