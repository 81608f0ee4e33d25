/**
 * The running proxy of one process: the current runtime table, the
 * listening sockets, the live server registry, and the three lifecycle
 * operations: start, reload, shutdown.
 *
 * Reload builds and validates the whole new table (and binds any new
 * listening socket) before anything changes; then the swap is one
 * assignment per listener. A bad config is reported and the old one keeps
 * serving. Existing client connections finish their current request on the
 * table they started with and are told to close after their next response.
 */
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { ConnectionTracker } from '../listeners/connection-tracker.js';
import { Listener } from '../listeners/listener.js';
import { LogSinks } from '../log/access-log.js';
import { configureErrorLog, log } from '../log/error-log.js';
import { onHealthEvent } from '../health/passive.js';
import { openTunnels } from '../proxy/tunnel.js';
import { ServerRegistry } from '../upstream/group.js';
import { compile } from './compile.js';
import type { ListenerSpec, RuntimeTable } from './table.js';

export interface RuntimeOptions {
  configPath: string;
  format?: ConfigFormat | undefined;
  /** 'worker' under a supervisor: it logs the cluster-wide "ready"/"reloaded", workers log their own. */
  role?: 'single' | 'worker';
}

export type ReloadResult = { ok: true } | { ok: false; error: string };

export class Runtime {
  table: RuntimeTable | undefined;
  readonly registry = new ServerRegistry();
  readonly logSinks = new LogSinks();
  readonly tracker = new ConnectionTracker(1024);
  readonly listeners = new Map<string, Listener>();
  private generation = 0;
  private stopping = false;

  constructor(readonly options: RuntimeOptions) {
    this.tracker.onSweep((now) => this.registry.sweep(now));
    onHealthEvent((e) => {
      if (e.remote === true) return;
      log().warn({ upstream: e.server.upstream, server: e.server.address, state: e.state, source: e.source, reason: e.reason }, e.state === 'down' ? 'upstream server marked down' : 'upstream server back up');
    });
  }

  /** Loads, compiles and activates the configuration, then binds every listener. Throws ConfigError or a bind error. */
  async start(): Promise<void> {
    const { table, activate, warnings } = this.build();
    for (const w of warnings) log().warn({ directive: w.directive }, formatDiagnostic(w));
    const opened = await this.bindNew(table.listeners);
    activate();
    await this.applyTable(table, opened);
    this.tracker.start();
    log().info({ generation: table.generation, listeners: [...this.listeners.values()].map((l) => `${l.scheme}://${l.key}`) }, this.worker ? 'worker ready' : 'ready');
  }

  private get worker(): boolean {
    return this.options.role === 'worker';
  }

  /** Reloads from the config file. On any problem the old configuration keeps serving. */
  async reload(): Promise<ReloadResult> {
    if (this.stopping) return { ok: false, error: 'stopping' };
    let built: ReturnType<Runtime['build']>;
    try {
      built = this.build();
    } catch (err) {
      return this.reloadFailed(err instanceof ConfigError ? err.message : (err as Error).message);
    }
    const { table, activate, warnings } = built;
    for (const w of warnings) log().warn({ directive: w.directive }, formatDiagnostic(w));
    let opened: Map<string, Listener>;
    const commits: (() => void)[] = [];
    try {
      // Certificates of kept listeners are loaded before anything changes.
      for (const spec of table.listeners) {
        const existing = this.listeners.get(spec.key);
        if (existing !== undefined && existing.spec.ssl === spec.ssl) commits.push(existing.prepare(spec));
      }
      opened = await this.bindNew(table.listeners);
    } catch (err) {
      return this.reloadFailed((err as Error).message);
    }
    for (const commit of commits) commit();
    activate();
    this.tracker.drainAll();
    await this.applyTable(table, opened);
    log().info({ generation: table.generation }, this.worker ? 'worker reloaded' : 'reloaded');
    return { ok: true };
  }

  private reloadFailed(error: string): ReloadResult {
    log().error({ error }, this.worker ? 'worker reload failed' : 'reload failed');
    return { ok: false, error };
  }

  /** Stops accepting, lets requests in flight finish (up to worker_shutdown_timeout), then closes everything. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.worker) log().info({}, 'stopping');
    // Stop accepting now; server.close() only resolves once every connection is gone.
    const closed = Promise.all([...this.listeners.values()].map((l) => l.close()));
    const deadline = performance.now() + (this.table?.shutdownTimeoutMs ?? 30_000);
    while (this.tracker.closeIdle() > 0 && performance.now() < deadline) await sleep(50);
    this.tracker.abortAll('shutdown deadline');
    for (const socket of openTunnels) socket.destroy();
    await closed;
    this.tracker.stop();
    for (const state of this.registry.all()) state.pool?.closeAll();
    this.logSinks.flushAll();
    if (!this.worker) log().info({}, 'stopped');
  }

  private build(): ReturnType<typeof compile> {
    const loaded = loadConfig(this.options.configPath, { format: this.options.format });
    const result = compile(loaded, { registry: this.registry, logSinks: this.logSinks, generation: this.generation + 1 });
    this.generation++;
    const { path, level } = loaded.config.error_log;
    return {
      ...result,
      activate() {
        configureErrorLog(path, level);
        result.activate();
      },
    };
  }

  /** Binds listeners the new table has and the running one does not. On failure closes what it opened and throws. */
  private async bindNew(specs: readonly ListenerSpec[]): Promise<Map<string, Listener>> {
    const opened = new Map<string, Listener>();
    try {
      for (const spec of specs) {
        const existing = this.listeners.get(spec.key);
        if (existing !== undefined && existing.spec.ssl === spec.ssl) continue;
        const listener = new Listener(spec, this.tracker);
        try {
          await listener.listen();
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : e.message;
          throw new Error(`cannot listen on ${spec.key}: ${why}`);
        }
        opened.set(spec.key, listener);
      }
    } catch (err) {
      await Promise.all([...opened.values()].map((l) => l.close()));
      throw err;
    }
    return opened;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
