/**
 * An upstream group as one config generation sees it: its servers (live
 * states from the registry), the snapshot policies pick from, and the shared
 * keep-alive budget. Rebuilt on every reload; the ServerStates inside are
 * reused, so health and counters survive.
 */
import type { UpstreamBlockConfig, UpstreamServerConfig } from '../config/schema.js';
import type { BalancingPolicy, PickRequest, PolicyFactory, ServerSnapshot, Tried } from '../balancer/policy.js';
import { ConnectionPool, IdleBudget, type PoolLimits } from './pool.js';
import { ServerState, type ServerEndpoint } from './server-state.js';

/** Until activate(): a compiled but not yet live group picks nothing. */
const NO_POLICY: BalancingPolicy = { name: 'inactive', pick: () => undefined };

/** Default idle keep-alive connections per group when the config has no `keepalive` (see README: differences from nginx). */
export const DEFAULT_KEEPALIVE = 32;

export class UpstreamGroup {
  readonly name: string;
  servers: ServerState[];
  snapshot: ServerSnapshot = { primary: [], backup: [] };
  policy: BalancingPolicy = NO_POLICY;
  readonly budget: IdleBudget;
  /** For implicit groups made from `proxy_pass http://host:port`. */
  readonly implicit: boolean;
  /** Connections to this group's servers use TLS (`proxy_pass https://`). */
  tls = false;
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
      s.tls = this.tls;
    });
    this.setServers(this.servers);
  }

  pick(request: PickRequest, tried: Tried): ServerState | undefined {
    return this.policy.pick(request, tried);
  }

  /** Replaces the server list (discovery, admin add/remove) and rebuilds the policy. */
  setServers(servers: ServerState[]): void {
    this.servers = servers;
    this.snapshot = makeSnapshot(servers);
    this.policy = this.policyFactory(this.snapshot);
    this.attachPools();
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

function makeSnapshot(servers: readonly ServerState[]): ServerSnapshot {
  return { primary: servers.filter((s) => !s.backup), backup: servers.filter((s) => s.backup) };
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
