/**
 * The running proxy of one process: the current runtime table, the
 * listening sockets, the live server registry, and the lifecycle operations:
 * start, reload, shutdown, plus the runtime changes that need no reload
 * (admin API operations, discovered servers).
 *
 * Reload builds and validates the whole new table (and binds any new
 * listening socket) before anything changes; then the swap is one
 * assignment per listener. A bad config is reported and the old one keeps
 * serving. Existing client connections finish their current request on the
 * table they started with and are told to close after their next response;
 * a WebSocket or a long stream is left alone (up to reload_stream_timeout)
 * unless the reload removed its upstream server, in which case it has
 * worker_shutdown_timeout to finish, like an old nginx worker.
 */
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat, type LoadedConfig } from '../config/load.js';
import type { UpstreamBlockConfig } from '../config/schema.js';
import { ConnectionTracker } from '../listeners/connection-tracker.js';
import { Listener } from '../listeners/listener.js';
import { LogSinks } from '../log/access-log.js';
import { configureErrorLog, log } from '../log/error-log.js';
import { ActiveHealth } from '../health/active.js';
import { onHealthEvent } from '../health/passive.js';
import { openTunnels } from '../proxy/tunnel.js';
import { ServerRegistry } from '../upstream/group.js';
import type { ServerState } from '../upstream/server-state.js';
import { AcmeService, acmeSpecsOf } from '../tls/acme/service.js';
import { compile } from './compile.js';
import { Membership, type DiscoveredServer, type MembershipState, type OpResult, type ServerOp } from './membership.js';
import { healthTransitions, runtimeReport, type RuntimeReport } from './report.js';
import { processStats } from './stats.js';
import type { ListenerSpec, RuntimeTable } from './table.js';
import { useTlsSettings } from '../upstream/tls-settings.js';

export interface RuntimeOptions {
  configPath: string;
  format?: ConfigFormat | undefined;
  /** 'worker' under a supervisor: it logs the cluster-wide "ready"/"reloaded", workers log their own. */
  role?: 'single' | 'worker';
  /**
   * Listening sockets inherited from the fulcrum process this one replaces
   * (binary upgrade): listener key -> file descriptor. Used by start() only.
   */
  inheritedFds?: ReadonlyMap<string, number>;
  /** The caller logs "ready" itself, once everything around the runtime (admin listener, discovery) is up. */
  quiet?: boolean;
}

export interface ShutdownOptions {
  /**
   * Binary upgrade: first tell every connection to close after its next
   * response and give clients this long to do so, and only then close idle
   * keep-alive connections (closing one just as its client reuses it would
   * lose that request; the new process takes the new connections meanwhile).
   */
  handoverMs?: number;
}

export type ReloadResult = { ok: true } | { ok: false; error: string };

export interface ReloadStats {
  succeeded: number;
  failed: number;
  /** Date.now() of the last reload attempt, 0 before any. */
  lastAt: number;
  lastOk: boolean;
}

/** The FULCRUM_LISTEN_FDS variable a replacing process gets: {"127.0.0.1:8080": 4, ...}. */
export const LISTEN_FDS_ENV = 'FULCRUM_LISTEN_FDS';

export function inheritedFdsFromEnv(env: NodeJS.ProcessEnv = process.env): Map<string, number> {
  const text = env[LISTEN_FDS_ENV];
  if (text === undefined || text === '') return new Map();
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return new Map(Object.entries(parsed).filter((e): e is [string, number] => Number.isInteger(e[1]) && (e[1] as number) > 2));
  } catch {
    return new Map();
  }
}

export class Runtime {
  table: RuntimeTable | undefined;
  /** The configuration the current table was compiled from. */
  loaded: LoadedConfig | undefined;
  readonly registry = new ServerRegistry();
  readonly logSinks = new LogSinks();
  readonly tracker = new ConnectionTracker(1024);
  readonly listeners = new Map<string, Listener>();
  /** Discovered servers and admin changes, applied on top of the config's servers. */
  membership = new Membership();
  readonly reloads: ReloadStats = { succeeded: 0, failed: 0, lastAt: 0, lastOk: true };
  /** Active health checks; a worker has none (the supervisor probes and sends verdicts). */
  readonly health: ActiveHealth | undefined;
  readonly startedAt = Date.now();
  private generation = 0;
  private stopping = false;
  /** Built-in ACME (single process only: with workers the supervisor runs it). */
  private readonly acme = new AcmeService();
  private readonly inherited: Map<string, number>;

  constructor(readonly options: RuntimeOptions) {
    this.inherited = new Map(options.inheritedFds ?? []);
    this.health = options.role === 'worker' ? undefined : new ActiveHealth();
    this.tracker.onSweep((now) => this.registry.sweep(now));
    onHealthEvent((e) => {
      if (e.remote === true) return;
      let t = healthTransitions.get(e.server.key);
      if (t === undefined) healthTransitions.set(e.server.key, (t = { down: 0, up: 0 }));
      t[e.state]++;
      log().warn({ upstream: e.server.upstream, server: e.server.address, state: e.state, source: e.source, reason: e.reason }, e.state === 'down' ? 'upstream server marked down' : 'upstream server back up');
    });
  }

  /** Loads, compiles and activates the configuration, then binds every listener. Throws ConfigError or a bind error. */
  async start(): Promise<void> {
    const { table, activate, warnings, loaded } = this.build();
    for (const w of warnings) log().warn({ directive: w.directive }, formatDiagnostic(w));
    const opened = await this.bindNew(table.listeners, true);
    activate();
    this.health?.sync(table.upstreams);
    this.loaded = loaded;
    await this.applyTable(table, opened);
    this.closeUnusedInherited();
    this.tracker.start();
    if (!this.worker) this.acme.update(acmeSpecsOf(table));
    if (this.options.quiet !== true) log().info({ generation: table.generation, listeners: this.listenerNames() }, this.worker ? 'worker ready' : 'ready');
  }

  listenerNames(): string[] {
    return [...this.listeners.values()].map((l) => `${l.scheme}://${l.key}`);
  }

  private get worker(): boolean {
    return this.options.role === 'worker';
  }

  /** Reloads from the config file. On any problem the old configuration keeps serving. */
  async reload(): Promise<ReloadResult> {
    if (this.stopping) return { ok: false, error: 'stopping' };
    this.reloads.lastAt = Date.now();
    let built: ReturnType<Runtime['build']>;
    try {
      built = this.build();
    } catch (err) {
      return this.reloadFailed(err instanceof ConfigError ? err.message : (err as Error).message);
    }
    const { table, activate, warnings, loaded } = built;
    for (const w of warnings) log().warn({ directive: w.directive }, formatDiagnostic(w));
    let opened: Map<string, Listener>;
    const commits: (() => void)[] = [];
    try {
      // Certificates of kept listeners are loaded before anything changes.
      for (const spec of table.listeners) {
        const existing = this.listeners.get(spec.key);
        if (existing !== undefined && existing.spec.ssl === spec.ssl) commits.push(existing.prepare(spec));
      }
      opened = await this.bindNew(table.listeners, false);
    } catch (err) {
      return this.reloadFailed((err as Error).message);
    }
    for (const commit of commits) commit();
    const before = [...this.registry.all()];
    activate();
    this.health?.sync(table.upstreams);
    this.loaded = loaded;
    this.tracker.drainAll(table.config.reload_stream_timeout);
    await this.applyTable(table, opened);
    this.retireRemoved(before);
    this.reloads.succeeded++;
    this.reloads.lastOk = true;
    if (!this.worker) this.acme.update(acmeSpecsOf(table));
    log().info({ generation: table.generation }, this.worker ? 'worker reloaded' : 'reloaded');
    return { ok: true };
  }

  private reloadFailed(error: string): ReloadResult {
    this.reloads.failed++;
    this.reloads.lastOk = false;
    log().error({ error }, this.worker ? 'worker reload failed' : 'reload failed');
    return { ok: false, error };
  }

  /** Stops accepting, lets requests in flight finish (up to worker_shutdown_timeout), then closes everything. */
  async shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.worker) log().info({}, 'stopping');
    this.acme.stop();
    // Stop accepting now. server.close() resolves once the listening socket is closed and its
    // net.Socket connections (TLS) are gone; plain-HTTP connections are bare handles that only
    // the tracker knows, and the loops below wait for those.
    const closed = Promise.all([...this.listeners.values()].map((l) => l.close()));
    const deadline = performance.now() + (this.table?.shutdownTimeoutMs ?? 30_000);
    if (options.handoverMs !== undefined && options.handoverMs > 0) {
      this.tracker.drainAll();
      const until = Math.min(deadline, performance.now() + options.handoverMs);
      while (this.tracker.size > 0 && performance.now() < until) await sleep(25);
    }
    while (this.tracker.closeIdle() > 0 && performance.now() < deadline) await sleep(50);
    this.tracker.abortAll('shutdown deadline');
    for (const socket of openTunnels) socket.destroy();
    await closed;
    this.health?.stop();
    this.tracker.stop();
    for (const state of this.registry.all()) state.pool?.closeAll();
    this.logSinks.flushAll();
    if (!this.worker) log().info({}, 'stopped');
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  // ------------------------------------------------------------------ runtime changes without a reload

  /** The upstream block of the running configuration (undefined for unknown or implicit upstreams). */
  upstreamConfig(name: string): UpstreamBlockConfig | undefined {
    return this.table?.upstreams.get(name)?.config;
  }

  /** An admin API change (drain, disable, enable, add, remove), applied at once and kept across reloads. */
  applyOp(op: ServerOp): OpResult {
    const result = this.membership.apply(op, this.upstreamConfig(op.upstream));
    if (result.ok) {
      this.refreshUpstream(op.upstream);
      if (!this.worker) log().info({ op: op.op, upstream: op.upstream, server: op.server }, 'upstream changed by the admin API');
    }
    return result;
  }

  /** What a discovery source found for an upstream; applied when it changes the server list. */
  setDiscovered(upstream: string, source: string, servers: DiscoveredServer[] | undefined): void {
    if (this.membership.setDiscovered(upstream, source, servers)) this.refreshUpstream(upstream);
  }

  /** Replaces all membership inputs (a worker's initial state from the supervisor). */
  setMembershipState(state: MembershipState): void {
    this.membership = Membership.fromState(state);
    if (this.table !== undefined) for (const name of this.table.upstreams.keys()) this.refreshUpstream(name);
  }

  /** Recomputes one upstream's servers from the config and the membership inputs. */
  private refreshUpstream(name: string): void {
    const group = this.table?.upstreams.get(name);
    if (group === undefined || group.config === undefined || group.implicit) return;
    const members = this.membership.effective(group.config);
    const before = [...this.registry.all()];
    const states = members.map((m) => {
      const state = this.registry.obtain(name, m.address, m.endpoint);
      state.applyConfig(m.params);
      state.source = m.source;
      useTlsSettings(state, group.tls);
      state.removedAt = 0;
      return state;
    });
    const changed = states.length !== group.servers.length || states.some((s, i) => s !== group.servers[i]);
    group.setServers(states);
    if (!changed) return;
    const keys = new Set<string>();
    for (const g of this.table!.upstreams.values()) for (const s of g.servers) keys.add(s.key);
    this.registry.retainOnly(keys);
    this.retireRemoved(before);
    if (!this.worker) log().info({ upstream: name, servers: states.map((s) => s.address) }, 'upstream servers changed');
  }

  /**
   * Servers no longer in any upstream: requests and streams still using them
   * get worker_shutdown_timeout to finish (as with an old nginx worker), then
   * their connections are closed.
   */
  private retireRemoved(before: readonly ServerState[]): void {
    const now = performance.now();
    const gone: ServerState[] = [];
    for (const s of before) {
      if (this.registry.get(s.key) === s || s.removedAt !== 0) continue;
      s.removedAt = now;
      if (s.openConnections.size > 0) gone.push(s);
    }
    if (gone.length === 0) return;
    const graceMs = this.table?.shutdownTimeoutMs ?? 30_000;
    setTimeout(() => {
      let closed = 0;
      for (const s of gone) {
        for (const c of [...s.openConnections]) {
          c.destroy();
          closed++;
        }
      }
      if (closed > 0) log().warn({ servers: gone.map((s) => s.key), connections: closed }, 'connections to removed upstream servers closed (worker_shutdown_timeout)');
    }, graceMs).unref();
  }

  // ------------------------------------------------------------------ observation

  report(): RuntimeReport {
    return runtimeReport(this.table?.upstreams ?? new Map(), this.table?.generation ?? 0, this.tracker.size);
  }

  /** File descriptors of the listening sockets, for a process that takes them over (binary upgrade). */
  listenFds(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, l] of this.listeners) {
      const fd = (l.server as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd === 'number' && fd >= 0) out.set(key, fd);
    }
    return out;
  }

  // ------------------------------------------------------------------ internals

  private build(): ReturnType<typeof compile> & { loaded: LoadedConfig } {
    const loaded = loadConfig(this.options.configPath, { format: this.options.format });
    const membership = this.membership;
    const result = compile(loaded, {
      registry: this.registry,
      logSinks: this.logSinks,
      generation: this.generation + 1,
      membership: (u) => membership.effective(u),
    });
    this.generation++;
    const { path, level } = loaded.config.error_log;
    return {
      ...result,
      loaded,
      activate() {
        configureErrorLog(path, level);
        result.activate();
      },
    };
  }

  /** Binds listeners the new table has and the running one does not. On failure closes what it opened and throws. */
  private async bindNew(specs: readonly ListenerSpec[], useInherited: boolean): Promise<Map<string, Listener>> {
    const opened = new Map<string, Listener>();
    try {
      for (const spec of specs) {
        const existing = this.listeners.get(spec.key);
        if (existing !== undefined && existing.spec.ssl === spec.ssl) continue;
        const listener = new Listener(spec, this.tracker);
        const fd = useInherited ? this.inherited.get(spec.key) : undefined;
        try {
          if (fd !== undefined) {
            this.inherited.delete(spec.key);
            await listenOnFd(listener, fd);
          } else {
            await listener.listen();
          }
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : e.message;
          throw new Error(`cannot listen on ${spec.key}: ${why}`);
        }
        if (spec.ssl) countHandshakes(listener.server as tls.Server);
        opened.set(spec.key, listener);
      }
    } catch (err) {
      await Promise.all([...opened.values()].map((l) => l.close()));
      throw err;
    }
    return opened;
  }

  /** Inherited sockets the configuration no longer listens on are closed, or clients would queue on them forever. */
  private closeUnusedInherited(): void {
    for (const [key, fd] of this.inherited) {
      try {
        fs.closeSync(fd);
        log().info({ listener: key }, 'inherited listening socket not in the configuration: closed');
      } catch {
        // already closed
      }
    }
    this.inherited.clear();
  }

  private async applyTable(table: RuntimeTable, opened: Map<string, Listener>): Promise<void> {
    const wanted = new Set(table.listeners.map((s) => s.key));
    const toClose: Listener[] = [];
    for (const [key, listener] of this.listeners) {
      if (!wanted.has(key) || opened.has(key)) {
        toClose.push(listener);
        this.listeners.delete(key);
      }
    }
    for (const spec of table.listeners) {
      const fresh = opened.get(spec.key);
      if (fresh !== undefined) this.listeners.set(spec.key, fresh);
    }
    this.table = table;
    this.tracker.maxConnections = table.workerConnections;
    await Promise.all(toClose.map((l) => l.close()));
  }
}

/**
 * Listens on an inherited socket. `exclusive` keeps a cluster worker from
 * asking the supervisor for the socket: the worker has its own copy of the
 * descriptor.
 */
function listenOnFd(listener: Listener, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    listener.server.once('error', onError);
    listener.server.listen({ fd, exclusive: true, backlog: listener.spec.backlog ?? 511 }, () => {
      listener.server.off('error', onError);
      resolve();
    });
  });
}

function countHandshakes(server: tls.Server): void {
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    processStats.tlsHandshakes++;
    if (socket.isSessionReused()) processStats.tlsResumed++;
  });
  server.on('tlsClientError', () => processStats.tlsFailures++);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
