/**
 * Every client connection of this process, for three jobs: timeouts (one
 * sweep every SWEEP_MS checks each connection's deadlines, instead of a timer
 * per request), connection limits (worker_connections), and draining on
 * reload and shutdown.
 */
export interface TrackedConnection {
  /** The client's address, for per-client limits (limit_conn). */
  readonly remoteAddr: string;
  checkTimeouts(now: number): void;
  /** Reload: finish the current request, then close (Connection: close). */
  drain(): void;
  /** Shutdown: close now when idle; returns true if it closed. */
  closeIfIdle(): boolean;
  /** Hard close (shutdown deadline). */
  abort(reason: string): void;
}

/** Timeout resolution: deadlines fire within this many ms of their time. */
export const SWEEP_MS = 100;

export class ConnectionTracker {
  private readonly connections = new Set<TrackedConnection>();
  private readonly perClient = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly housekeeping: ((now: number) => void)[] = [];
  /** Connections drained by a reload that must be gone by a time (reload_stream_timeout). */
  private readonly deadlines = new Map<TrackedConnection, number>();

  /** The count as last reported to the supervisor, and who to tell when the count moved far from it. */
  private sizeWatch: { reported: number; threshold: number; notify: () => void } | undefined;

  constructor(public maxConnections: number) {}

  /**
   * Calls `notify` on every add or remove while the count is `threshold` or
   * more away from the one last passed to reported(): a burst that opened
   * or closed is told at once, not at the next periodic report.
   */
  watchSize(threshold: number, notify: () => void): void {
    this.sizeWatch = { reported: this.connections.size, threshold, notify };
  }

  reported(size: number): void {
    if (this.sizeWatch !== undefined) this.sizeWatch.reported = size;
  }

  private checkSize(): void {
    const w = this.sizeWatch;
    if (w !== undefined && Math.abs(this.connections.size - w.reported) >= w.threshold) w.notify();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Whether a new connection may be accepted (worker_connections). */
  get full(): boolean {
    return this.connections.size >= this.maxConnections;
  }

  add(c: TrackedConnection): void {
    this.connections.add(c);
    const addr = c.remoteAddr;
    this.perClient.set(addr, (this.perClient.get(addr) ?? 0) + 1);
    this.checkSize();
  }

  remove(c: TrackedConnection): void {
    if (!this.connections.delete(c)) return;
    if (this.deadlines.size !== 0) this.deadlines.delete(c);
    const addr = c.remoteAddr;
    const n = (this.perClient.get(addr) ?? 1) - 1;
    if (n === 0) this.perClient.delete(addr);
    else this.perClient.set(addr, n);
    this.checkSize();
  }

  /** Open connections from one client address (limit_conn keyed by $binary_remote_addr / $remote_addr). */
  connectionsFrom(addr: string): number {
    return this.perClient.get(addr) ?? 0;
  }

  /** Runs `task` on every sweep too (idle upstream pools, health clocks). */
  onSweep(task: (now: number) => void): void {
    this.housekeeping.push(task);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  sweep(): void {
    const now = performance.now();
    for (const c of this.connections) c.checkTimeouts(now);
    if (this.deadlines.size !== 0) {
      for (const [c, at] of this.deadlines) {
        if (now < at) continue;
        this.deadlines.delete(c);
        c.abort('reload_stream_timeout');
      }
    }
    for (const task of this.housekeeping) task(now);
  }

  /**
   * Reload: every current connection closes after its next response. With
   * `deadlineMs` > 0, one still open that long afterwards (a long stream, a
   * WebSocket) is closed then; a connection keeps the deadline of the first
   * reload that drained it.
   */
  drainAll(deadlineMs = 0): void {
    const at = deadlineMs > 0 ? performance.now() + deadlineMs : 0;
    for (const c of this.connections) {
      c.drain();
      if (at !== 0 && !this.deadlines.has(c)) this.deadlines.set(c, at);
    }
  }

  /** Shutdown: close idle connections, let busy ones finish. Returns how many are still busy. */
  closeIdle(): number {
    for (const c of [...this.connections]) c.closeIfIdle();
    return this.connections.size;
  }

  abortAll(reason: string): void {
    for (const c of [...this.connections]) c.abort(reason);
  }
}
