/**
 * One upstream server's identity and live state. States live in a registry
 * keyed by upstream name and address (registry.ts), so a reload that keeps a
 * server keeps its failure counters, health, connection pool and statistics.
 *
 * Health verdicts are written by src/health (passive outcomes, active probes);
 * balancing policies only ask `isAvailable()`.
 */
import type { UpstreamServerConfig } from '../config/schema.js';
import type { ConnectionPool } from './pool.js';

export interface ServerEndpoint {
  /** Host name or IP address to connect to. */
  host: string;
  port: number;
}

/** Why a server is not available right now; shown by the debug header and the admin API. */
export type Unavailability = 'config-down' | 'drain' | 'failed' | 'unhealthy' | 'full' | 'unresolved' | undefined;

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
  /** Connect with TLS (proxy_pass https://). */
  tls = false;

  // ---- passive health, nginx's exact fields (ngx_http_upstream_rr_peer_t)
  fails = 0;
  /** Time of the last failure. */
  accessed = 0;
  /** Start of the current fail_timeout window. */
  checked = 0;
  /** Set when fails reached max_fails; cleared when a success resets fails. */
  failedSince = 0;
  /** True for the only primary server of a group without backups: never marked down (nginx). */
  single = false;

  // ---- active health (src/health/active.ts)
  healthy = true;
  healthChangedAt = 0;
  /** ms timestamp when the server came back (slow_start ramps from here). */
  recoveredAt = 0;

  // ---- load
  /** Requests in flight to this server. */
  active = 0;
  /** Open upstream connections (busy + idle). */
  connections = 0;

  // ---- statistics (admin API, metrics, status page, least_time)
  requests = 0;
  responses = [0, 0, 0, 0, 0, 0];
  failures = 0;
  /** Exponentially weighted moving average of response-header latency, ms. */
  latencyEwmaMs = 0;
  lastLatencyMs = 0;

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
    this.weight = c.weight;
    this.maxFails = c.max_fails;
    this.failTimeoutMs = c.fail_timeout;
    this.backup = c.backup;
    this.configDown = c.down;
    this.drain = c.drain;
    this.maxConns = c.max_conns;
    this.slowStartMs = c.slow_start;
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

  unavailability(now: number): Unavailability {
    if (this.configDown) return 'config-down';
    if (this.drain) return 'drain';
    if (!this.healthy) return 'unhealthy';
    if (this.isFailed(now)) return 'failed';
    if (this.maxConns !== 0 && this.active >= this.maxConns) return 'full';
    return undefined;
  }
}
