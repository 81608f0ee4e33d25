/**
 * An upstream group as one config generation sees it: its servers (live
 * states from the registry), the snapshot policies pick from, and the shared
 * keep-alive budget. Rebuilt on every reload; the ServerStates inside are
 * reused, so health and counters survive.
 */
import type { UpstreamBlockConfig, UpstreamServerConfig } from '../config/schema.js';
import type { BalancingPolicy, PickRequest, PolicyFactory, ServerSnapshot, Tried } from '../balancer/policy.js';
import { ConnectionPool, IdleBudget, type PoolLimits } from './pool.js';
import type { RetryBudget } from './retry-budget.js';
import { useTlsSettings, type UpstreamTls } from './tls-settings.js';
import { ServerState, type RecoveryListener, type ServerEndpoint } from './server-state.js';

/** healthReason of a new server held out by `health_check mandatory` until its first probe passes. */
export const MANDATORY_PENDING = 'waiting for its first health check (mandatory)';

/** slow_start ramps a weight in this many steps; the policy is rebuilt at each. */
export const SLOW_START_STEPS = 10;
const MIN_STEP_MS = 50;

/** What the exchange needs to set sticky cookies (src/balancer/policies/sticky.ts). */
export interface StickyCookies {
  addSetCookie(headers: { add(name: string, value: string): void }, vars: PickRequest['vars'], server: ServerState): void;
}

/** Until activate(): a compiled but not yet live group picks nothing. */
const NO_POLICY: BalancingPolicy = { name: 'inactive', pick: () => undefined };

/** Default idle keep-alive connections per group when the config has no `keepalive` (see README: differences from nginx). */
export const DEFAULT_KEEPALIVE = 32;

export class UpstreamGroup implements RecoveryListener {
  readonly name: string;
  servers: ServerState[];
  snapshot: ServerSnapshot = { primary: [], backup: [] };
  policy: BalancingPolicy = NO_POLICY;
  /** The balancing method as configured, for logs and the debug header. */
  method = 'round_robin';
  /** Whether slow_start may ramp weights (not with hash and ip_hash). */
  weighted = true;
  /** Set with `sticky cookie`. */
  sticky: StickyCookies | undefined = undefined;
  /** Set with `retry_budget`. */
  retryBudget: RetryBudget | undefined = undefined;
  /** New servers (reload, discovery, admin API) ramp up with slow_start; not those of the first configuration. */
  rampNewServers = false;
  /** True once a newer generation replaced this group. */
  retired = false;
  /** Told after the server list changed (active health checks follow membership changes). */
  onServersChanged: ((group: UpstreamGroup) => void) | undefined = undefined;
  private rampTimer: NodeJS.Timeout | undefined;
  private budgetTimer: NodeJS.Timeout | undefined;
  readonly budget: IdleBudget;
  /** For implicit groups made from `proxy_pass http://host:port`. */
  readonly implicit: boolean;
  /** Connections to this group's servers use TLS (`proxy_pass https://`) with these proxy_ssl_* settings. */
  tls: UpstreamTls | undefined = undefined;
  /** Server parameters from the config, applied to the shared states by activate(). */
  private readonly params: readonly UpstreamServerConfig[];

  constructor(
    name: string,
    servers: ServerState[],
    params: readonly UpstreamServerConfig[],
    limits: PoolLimits,
    private readonly policyFactory: PolicyFactory,
    implicit: boolean,
    readonly config: UpstreamBlockConfig | undefined,
  ) {
    this.name = name;
    this.implicit = implicit;
    this.servers = servers;
    this.params = params;
    this.budget = new IdleBudget(limits);
  }

  /**
   * Applies this generation's parameters to the live server states and builds
   * the policy. Called when the table goes live, never by a compile that
   * might still fail.
   */
  activate(): void {
    this.servers.forEach((s, i) => {
      s.applyConfig(this.params[i]!);
      useTlsSettings(s, this.tls);
    });
    this.setServers(this.servers);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    return this.policy.pick(request, tried);
  }

  /** Replaces the server list (discovery, admin add/remove) and rebuilds the policy. */
  setServers(servers: ServerState[]): void {
    const now = performance.now();
    const mandatory = this.config?.health_check?.mandatory === true;
    for (const s of servers) {
      // A policy of this group watches these servers from now on (least_conn, least_time); the old one lets go.
      s.watcher = undefined;
      s.owner = this;
      if (!s.activated) {
        s.activated = true;
        if (this.rampNewServers && s.slowStartMs > 0) s.recoveredAt = now;
        if (mandatory) {
          s.healthy = false;
          s.healthChangedAt = now;
          s.healthReason = MANDATORY_PENDING;
        }
      }
    }
    this.servers = servers;
    this.rebuild(now);
    this.attachPools();
    if (this.retryBudget !== undefined && this.budgetTimer === undefined && !this.retired) {
      const budget = this.retryBudget;
      budget.sample(now, servers); // first snapshot of the counters
      this.budgetTimer = setInterval(() => budget.sample(performance.now(), this.servers), Math.max(100, budget.windowMs / 10));
      this.budgetTimer.unref();
    }
    this.onServersChanged?.(this);
  }

  /** A server of this group became usable again (health event): slow_start ramps it up. */
  serverRecovered(server: ServerState, at: number): void {
    if (this.retired || server.slowStartMs === 0 || !this.weighted) return;
    server.recoveredAt = at;
    this.rebuild(performance.now());
  }

  /** Stops this generation's timers; called when a newer generation takes over. */
  retire(): void {
    this.retired = true;
    if (this.rampTimer !== undefined) clearInterval(this.rampTimer);
    if (this.budgetTimer !== undefined) clearInterval(this.budgetTimer);
    this.rampTimer = undefined;
    this.budgetTimer = undefined;
  }

  /** The effective weight of `server` at `now`: lower while slow_start ramps it (scaled by SLOW_START_STEPS). */
  effectiveWeight(server: ServerState, now: number): number {
    const full = server.weight * SLOW_START_STEPS;
    if (!this.weighted || server.slowStartMs === 0 || server.recoveredAt === 0) return full;
    const progress = (now - server.recoveredAt) / server.slowStartMs;
    if (progress >= 1) return full;
    return Math.max(1, Math.ceil(full * Math.max(progress, 0)));
  }

  /** Builds the snapshot (with ramped weights while any server ramps) and the policy. */
  private rebuild(now: number): void {
    let ramping = false;
    let shortest = Infinity;
    if (this.weighted) {
      for (const s of this.servers) {
        if (s.slowStartMs > 0 && s.recoveredAt !== 0 && now - s.recoveredAt < s.slowStartMs) {
          ramping = true;
          shortest = Math.min(shortest, s.slowStartMs);
        }
      }
    }
    this.snapshot = makeSnapshot(this.name, this.servers, ramping ? (s) => this.effectiveWeight(s, now) : undefined);
    this.policy = this.policyFactory(this.snapshot);
    if (ramping && this.rampTimer === undefined && !this.retired) {
      this.rampTimer = setInterval(() => this.rebuild(performance.now()), Math.max(MIN_STEP_MS, shortest / SLOW_START_STEPS));
      this.rampTimer.unref();
    } else if (!ramping && this.rampTimer !== undefined) {
      clearInterval(this.rampTimer);
      this.rampTimer = undefined;
    }
  }

  /** Rebuilds the policy after a weight or membership change that keeps the same servers. */
  refresh(): void {
    this.setServers(this.servers);
  }

  private attachPools(): void {
    const primaries = this.servers.filter((s) => !s.backup);
    const hasBackup = primaries.length !== this.servers.length;
    for (const s of this.servers) {
      if (s.pool === undefined) s.pool = new ConnectionPool(this.budget);
      else s.pool.budget = this.budget;
      // nginx never marks the only server of a group down (there is nowhere else to go).
      s.single = primaries.length === 1 && !hasBackup && !s.backup;
    }
  }
}

function makeSnapshot(group: string, servers: readonly ServerState[], weightOf?: (s: ServerState) => number): ServerSnapshot {
  const primary = servers.filter((s) => !s.backup);
  const backup = servers.filter((s) => s.backup);
  if (weightOf === undefined) return { group, primary, backup };
  return { group, primary, backup, primaryWeights: primary.map(weightOf), backupWeights: backup.map(weightOf) };
}

/**
 * Live server states by `${upstream}/${address}`; outlives config generations.
 */
export class ServerRegistry {
  private readonly states = new Map<string, ServerState>();

  obtain(upstream: string, address: string, endpoint: ServerEndpoint): ServerState {
    const key = `${upstream}/${address}`;
    let state = this.states.get(key);
    if (state === undefined) {
      state = new ServerState(upstream, address, endpoint);
      this.states.set(key, state);
    } else {
      state.endpoint = endpoint;
    }
    return state;
  }

  private groups: UpstreamGroup[] = [];

  /** The groups of the generation going live; the previous generation's are retired (their timers stop). */
  adoptGroups(groups: Iterable<UpstreamGroup>): void {
    const next = [...groups];
    for (const g of this.groups) if (!next.includes(g)) g.retire();
    this.groups = next;
  }

  /** Drops states not used by the current generation and closes their idle connections. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const [key, state] of this.states) {
      if (!keys.has(key)) {
        state.pool?.closeAll();
        this.states.delete(key);
      }
    }
  }

  get(key: string): ServerState | undefined {
    return this.states.get(key);
  }

  all(): IterableIterator<ServerState> {
    return this.states.values();
  }

  /** Periodic housekeeping: closes idle connections past their timeouts. */
  sweep(now: number): void {
    for (const state of this.states.values()) state.pool?.sweep(now);
  }
}

/**
 * Parses an upstream server address: "host:port", "host" (port 80, like
 * nginx), "[v6]:port". Returns an error message for unsupported forms.
 */
export function parseServerAddress(address: string, defaultPort = 80): ServerEndpoint | string {
  if (address.startsWith('unix:')) return `unix sockets are not supported ("${address}")`;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?$/.exec(address);
  if (v6 !== null) return withPort(v6[1]!, v6[2], defaultPort, address);
  const colon = address.lastIndexOf(':');
  if (colon < 0) return withPort(address, undefined, defaultPort, address);
  if (address.indexOf(':') !== colon) return `invalid address "${address}" (put IPv6 addresses in brackets)`;
  return withPort(address.slice(0, colon), address.slice(colon + 1), defaultPort, address);
}

function withPort(host: string, port: string | undefined, defaultPort: number, address: string): ServerEndpoint | string {
  if (host === '' || !/^[A-Za-z0-9.\-_:]+$/.test(host)) return `invalid host in "${address}"`;
  if (port === undefined) return { host, port: defaultPort };
  if (!/^[0-9]{1,5}$/.test(port) || +port < 1 || +port > 65535) return `invalid port in "${address}"`;
  return { host, port: +port };
}
