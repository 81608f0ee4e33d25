/**
 * One upstream server's identity and live state. States live in a registry
 * keyed by upstream name and address (registry.ts), so a reload that keeps a
 * server keeps its failure counters, health, connection pool and statistics.
 *
 * Health verdicts are written by src/health (passive outcomes, active probes);
 * balancing policies only ask `isAvailable()`.
 */
import type { UpstreamServerConfig } from '../config/schema.js';
import { DOUBLE_ZERO } from '../runtime/double-zero.js';
import type { ConnectionPool } from './pool.js';
import { LatencyHistogram } from './histogram.js';
import type { UpstreamTls } from './tls-settings.js';

export interface ServerEndpoint {
  /** Host name or IP address to connect to. */
  host: string;
  port: number;
}

/** Why a server is not available right now; shown by the debug header and the admin API. */
export type Unavailability = 'config-down' | 'drain' | 'failed' | 'unhealthy' | 'full' | 'unresolved' | undefined;

/**
 * A load-aware balancing policy (least_conn, least_time) keeps its servers
 * ordered by load; it is told when a server's load or latency changes. Only
 * servers of an upstream using such a method have a watcher, so round robin
 * pays one `undefined` check per request and nothing more.
 */
export interface LoadWatcher {
  loadChanged(server: ServerState): void;
  /** A response-header (`lastByte` false) or whole-response (true) time, ms. */
  timing(server: ServerState, ms: number, lastByte: boolean): void;
}

/** The upstream group using a server, told when it becomes usable again (slow_start). */
export interface RecoveryListener {
  serverRecovered(server: ServerState, at: number): void;
}

export class ServerState {
  /** Address as configured ("backend_1:8080"). */
  readonly address: string;
  /** `${upstream}/${address}`: the registry key. */
  readonly key: string;
  readonly upstream: string;
  private _endpoint: ServerEndpoint;
  /** "host:port", for logs ($upstream_addr) and the admin API. */
  label: string;

  // ---- configuration (replaced on reload)
  weight = 1;
  maxFails = 1;
  failTimeoutMs = 10_000;
  backup = false;
  configDown = false;
  drain = false;
  maxConns = 0;
  slowStartMs = 0;
  /** Connect with TLS (proxy_pass https://) with these proxy_ssl_* settings. */
  tls: UpstreamTls | undefined = undefined;
  /** proxy_ssl_session_reuse: the last TLS session this server gave. */
  tlsSession: Buffer | undefined = undefined;

  // ---- passive health, nginx's exact fields (ngx_http_upstream_rr_peer_t)
  fails = 0;
  /** Time of the last failure. */
  accessed = DOUBLE_ZERO;
  /**
   * Start of the current fail_timeout window. None before the first
   * selection, which starts one (nginx's does too: its clock is the wall
   * clock, far from 0). Starting it then, not 10 s later, also keeps this
   * field's first write out of live traffic (src/runtime/double-zero.ts).
   */
  checked = -Infinity;
  /** Set when fails reached max_fails; cleared when a success resets fails. */
  failedSince = DOUBLE_ZERO;
  /** True for the only primary server of a group without backups: never marked down (nginx). */
  single = false;

  /** The last failure counted against this server (passive health), and when (performance.now()). */
  lastFailure = '';
  lastFailureAt = DOUBLE_ZERO;

  // ---- active health (src/health/active.ts)
  healthy = true;
  /** performance.now() of the last active-health verdict change. */
  healthChangedAt = DOUBLE_ZERO;
  /** Why the active checks last changed `healthy` ("status 503 on GET /healthz", ...). */
  healthReason = '';
  /** Consecutive passed / failed probes (rise / fall). */
  probePasses = 0;
  probeFails = 0;
  /** ms timestamp when the server came back (slow_start ramps from here). */
  recoveredAt = DOUBLE_ZERO;
  /** Set once a group has applied its configuration to this state (new servers are ramped, `mandatory` checks hold them). */
  activated = false;

  // ---- balancing (src/balancer)
  watcher: LoadWatcher | undefined = undefined;
  /** This server's index in its watcher's tables (a backup's is negative); set by the watcher. */
  watchSlot = 0;
  owner: RecoveryListener | undefined = undefined;
  /** least_time: peak-EWMA of the measured latency (ms, 0 = not measured yet) and when it was last updated. */
  peakEwmaMs = DOUBLE_ZERO;
  peakEwmaAt = DOUBLE_ZERO;

  // ---- load
  /** Requests in flight to this server. */
  active = 0;
  /**
   * Requests in flight to this server from the other worker processes (sum of
   * their counts, reported every ~100 ms through the supervisor; 0 with one
   * worker). Balancing by load uses `active + remoteActive`. An accessor, so
   * that a least_conn policy watching this server re-sorts it when it changes.
   */
  get remoteActive(): number {
    return this._remoteActive;
  }

  set remoteActive(n: number) {
    if (n === this._remoteActive) return;
    this._remoteActive = n;
    if (this.watcher !== undefined) this.watcher.loadChanged(this);
  }

  private _remoteActive = 0;
  /** Open upstream connections (busy + idle). */
  connections = 0;
  /** Open upstream connections, so a server removed from its upstream can have them closed after a grace period. */
  readonly openConnections = new Set<{ destroy(): void }>();
  /** When this server was removed from its upstream (reload, admin API, discovery); 0 while it is a member. */
  removedAt = DOUBLE_ZERO;
  /** Where this server comes from: the config file, DNS (A/AAAA or SRV), a servers file or the admin API. */
  source: 'config' | 'dns' | 'srv' | 'file' | 'admin' = 'config';

  // ---- statistics (admin API, metrics, status page, least_time)
  // Counters start as doubles too: a busy server passes 2^31 requests within
  // a day, and the switch from small integer would happen then, under load.
  requests = DOUBLE_ZERO;
  responses = [DOUBLE_ZERO, DOUBLE_ZERO, DOUBLE_ZERO, DOUBLE_ZERO, DOUBLE_ZERO, DOUBLE_ZERO];
  failures = DOUBLE_ZERO;
  /** Exponentially weighted moving average of response-header latency, ms. */
  latencyEwmaMs = DOUBLE_ZERO;
  lastLatencyMs = DOUBLE_ZERO;
  /** Requests sent here as a retry after another server failed them. */
  retries = DOUBLE_ZERO;
  /** Response-header latency histogram (metrics); one observe() per response. */
  readonly headerLatency = new LatencyHistogram();

  pool: ConnectionPool | undefined;

  constructor(upstream: string, address: string, endpoint: ServerEndpoint) {
    this.upstream = upstream;
    this.address = address;
    this.key = `${upstream}/${address}`;
    this._endpoint = endpoint;
    this.label = `${endpoint.host}:${endpoint.port}`;
  }

  get endpoint(): ServerEndpoint {
    return this._endpoint;
  }

  set endpoint(e: ServerEndpoint) {
    this._endpoint = e;
    this.label = `${e.host}:${e.port}`;
  }

  applyConfig(c: UpstreamServerConfig): void {
    // Back from `down` or `drain` (reload, admin API): slow_start ramps it up like a recovered server.
    const wasOut = this.activated && (this.configDown || this.drain);
    if (wasOut && !c.down && !c.drain) this.recoveredAt = performance.now();
    this.weight = c.weight;
    this.maxFails = c.max_fails;
    this.failTimeoutMs = c.fail_timeout;
    this.backup = c.backup;
    this.configDown = c.down;
    this.drain = c.drain;
    this.maxConns = c.max_conns;
    this.slowStartMs = c.slow_start;
  }

  /** A request starts on this server (active++), told to a load-aware policy. */
  acquire(): void {
    this.active++;
    if (this.watcher !== undefined) this.watcher.loadChanged(this);
  }

  /** A request on this server ended (active--). */
  release(): void {
    this.active--;
    if (this.watcher !== undefined) this.watcher.loadChanged(this);
  }

  /** Passive-health verdict at time `now` (nginx: fails >= max_fails within fail_timeout). */
  isFailed(now: number): boolean {
    return !this.single && this.maxFails !== 0 && this.fails >= this.maxFails && now - this.checked <= this.failTimeoutMs;
  }

  /**
   * Whether a new request may be sent here now: not marked down, not drained,
   * not failed, healthy, and below max_conns.
   */
  isAvailable(now: number): boolean {
    if (this.configDown || this.drain || !this.healthy) return false;
    if (this.maxConns !== 0 && this.active >= this.maxConns) return false;
    return !this.isFailed(now);
  }

  /** Sticky sessions still reach a draining server (nginx's `drain`). */
  isAvailableForSticky(now: number): boolean {
    if (this.configDown || !this.healthy) return false;
    if (this.maxConns !== 0 && this.active >= this.maxConns) return false;
    return !this.isFailed(now);
  }

  /** Panic mode ignores health verdicts, never the operator's `down`/`drain` or max_conns. */
  isUsableInPanic(): boolean {
    return !this.configDown && !this.drain && (this.maxConns === 0 || this.active < this.maxConns);
  }

  unavailability(now: number): Unavailability {
    if (this.configDown) return 'config-down';
    if (this.drain) return 'drain';
    if (!this.healthy) return 'unhealthy';
    if (this.isFailed(now)) return 'failed';
    if (this.maxConns !== 0 && this.active >= this.maxConns) return 'full';
    return undefined;
  }
}
