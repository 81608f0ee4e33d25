/**
 * The supervisor's control plane (worker_processes > 1): service discovery,
 * the admin listener (API, /metrics, status page), the config watch, the
 * binary upgrade, and what keeps the workers' views of the upstreams the same.
 *
 * How the workers stay consistent, and what it costs (README "Workers"):
 *
 * - Membership (discovered servers, admin changes): decided here, once, and
 *   sent to every worker as data; each worker computes the same server list
 *   from it (src/runtime/membership.ts). A worker that starts (or is
 *   replaced) gets the whole state in its 'init' message before it compiles
 *   its first table. Cost: one message per change per worker.
 * - Admin changes are acknowledged by every worker before the API answers,
 *   so a GET right after a POST already sees the change everywhere.
 * - least_conn counts: each worker reports its requests in flight per server
 *   every 100 ms when they changed; this process sums them and sends each
 *   worker the others' total (`remoteActive`). The view of the other workers'
 *   load is at most ~100 ms old. Cost: at most 10 small messages per second
 *   per worker each way under load, none when idle.
 * - Reports (counters, health, latency histograms) are asked of every worker
 *   when the admin API, /metrics or the status page need them, and added up.
 *   Nothing is sent per request.
 * - Passive health ops are relayed by the supervisor itself (supervisor.ts).
 */
import type { Worker } from 'node:cluster';
import type { ControlInfo, ControlPlane, CertificateRef } from '../admin/control.js';
import { certificatesOf } from '../admin/control.js';
import { AdminServer, adminSettings } from '../admin/server.js';
import type { ConfigFormat, LoadedConfig } from '../config/load.js';
import { Discovery } from '../discovery/discovery.js';
import type { DiscoveryStats } from '../discovery/discovery.js';
import { log } from '../log/error-log.js';
import { Membership, type DiscoveredServer, type OpResult, type ServerOp } from '../runtime/membership.js';
import { onHealthEvent } from '../health/passive.js';
import { healthTransitions, mergeReports, type RuntimeReport } from '../runtime/report.js';
import type { ReloadResult, ReloadStats } from '../runtime/runtime.js';
import { processStatsData } from '../runtime/stats.js';
import type { RuntimeTable } from '../runtime/table.js';
import { VERSION } from '../version.js';
import { ConfigWatcher } from './config-watch.js';
import type { FromWorker, ToWorker } from './messages.js';
import { adminFdKey, spawnReplacement } from './upgrade.js';

/** What ClusterOps needs from the supervisor. */
export interface SupervisorHost {
  readonly configPath: string;
  readonly format: ConfigFormat | undefined;
  workers(): readonly Worker[];
  reload(): Promise<ReloadResult>;
  /** Graceful stop of the whole cluster (after a binary upgrade). */
  stop(): void;
}

const REPORT_TIMEOUT_MS = 2000;
const OP_TIMEOUT_MS = 5000;
const LOAD_FLUSH_MS = 10;

interface Pending<T> {
  waiting: Set<Worker>;
  results: T[];
  resolve(results: T[]): void;
  timer: NodeJS.Timeout;
}

export class ClusterOps implements ControlPlane {
  readonly membership = new Membership();
  readonly reloadStats: ReloadStats = { succeeded: 0, failed: 0, lastAt: 0, lastOk: true };
  private readonly finder = new Discovery((upstream, source, servers) => this.discovered(upstream, source, servers));
  private readonly admin = new AdminServer(this);
  private readonly watcher: ConfigWatcher;
  private loaded: LoadedConfig | undefined;
  private table: RuntimeTable | undefined;
  private readonly startedAt = Date.now();
  private nextId = 1;
  private readonly pending = new Map<number, Pending<unknown>>();
  private readonly fdRequests = new Map<number, { fds: Map<string, { fd?: number; close?: () => void }>; done(count: number): void }>();
  private readonly load = new Map<Worker, Map<string, number>>();
  private readonly sent = new Map<Worker, Map<string, number>>();
  private loadTimer: NodeJS.Timeout | undefined;
  private upgrading = false;
  /** Workers that asked for their initial state: they get every later change (earlier ones are in the state). */
  private readonly initialised = new Set<Worker>();
  /** Workers that serve: they are asked for reports. */
  private readonly serving = new Set<Worker>();

  constructor(private readonly host: SupervisorHost) {
    this.watcher = new ConfigWatcher(() => void host.reload());
    // Health changes decided here (active health checks run in the supervisor) are counted here.
    onHealthEvent((e) => {
      if (e.remote === true) return;
      let t = healthTransitions.get(e.server.key);
      if (t === undefined) healthTransitions.set(e.server.key, (t = { down: 0, up: 0 }));
      t[e.state]++;
    });
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Applies a (new) configuration: discovery sources, admin listener, config
   * watch. `adminFd`: the admin socket inherited from a replaced process.
   */
  async configure(loaded: LoadedConfig, table: RuntimeTable, first: boolean, adminFd?: number): Promise<void> {
    this.loaded = loaded;
    this.table = table;
    this.finder.configure(loaded.config, loaded.baseDir);
    try {
      await this.admin.configure(adminSettings(loaded.config), adminFd);
    } catch (err) {
      if (first) throw err;
      log().error({ error: (err as Error).message }, 'admin listener not moved: keeping the old one');
    }
    if (loaded.config.watch_config) this.watcher.watch(loaded.files);
    else this.watcher.stop();
  }

  async stop(): Promise<void> {
    this.watcher.stop();
    this.finder.stop();
    if (this.loadTimer !== undefined) clearTimeout(this.loadTimer);
    await this.admin.close();
  }

  noteReload(ok: boolean): void {
    this.reloadStats.lastAt = Date.now();
    this.reloadStats.lastOk = ok;
    if (ok) this.reloadStats.succeeded++;
    else this.reloadStats.failed++;
  }

  /** A new worker: it gets the membership state before it compiles its first table. */
  initWorker(worker: Worker): void {
    this.initialised.add(worker);
    send(worker, { type: 'init', membership: this.membership.toState() });
  }

  /** Workers that get broadcasts and changes (a worker still starting queues changes until it serves). */
  private members(): Worker[] {
    return this.host.workers().filter((w) => this.initialised.has(w) && w.isConnected());
  }

  /** Workers that serve traffic and can report. */
  private servers(): Worker[] {
    return this.members().filter((w) => this.serving.has(w));
  }

  workerGone(worker: Worker): void {
    this.initialised.delete(worker);
    this.serving.delete(worker);
    this.load.delete(worker);
    this.sent.delete(worker);
    for (const [id, p] of this.pending) {
      if (p.waiting.delete(worker) && p.waiting.size === 0) this.settle(id);
    }
    this.scheduleLoadFlush();
  }

  /** Handles the messages of this module; returns false for others. */
  onMessage(from: Worker, m: FromWorker, handle: unknown): boolean {
    switch (m.type) {
      case 'init-request':
        this.initWorker(from);
        return true;
      case 'ready':
        this.serving.add(from);
        return false;
      case 'load': {
        let mine = this.load.get(from);
        if (mine === undefined) this.load.set(from, (mine = new Map()));
        for (const [key, active] of m.load) {
          if (active === 0) mine.delete(key);
          else mine.set(key, active);
        }
        this.scheduleLoadFlush();
        return true;
      }
      case 'report':
      case 'server-op-result': {
        const p = this.pending.get(m.id);
        if (p === undefined || !p.waiting.delete(from)) return true;
        p.results.push(m.type === 'report' ? m.report : m.result);
        if (p.waiting.size === 0) this.settle(m.id);
        return true;
      }
      case 'listen-fd': {
        const r = this.fdRequests.get(m.id);
        const h = handle as { fd?: number; close?: () => void } | undefined;
        if (r !== undefined && h !== undefined) r.fds.set(m.key, h);
        else (h as { close?: () => void } | undefined)?.close?.();
        return true;
      }
      case 'listen-fds-done':
        this.fdRequests.get(m.id)?.done(m.count);
        return true;
      default:
        return false;
    }
  }

  // ------------------------------------------------------------------ ControlPlane

  info(): ControlInfo {
    return {
      version: VERSION,
      mode: 'workers',
      pid: process.pid,
      workers: this.host.workers().length,
      configPath: this.host.configPath,
      format: this.host.format,
      startedAt: this.startedAt,
    };
  }

  workerReports(): Promise<RuntimeReport[]> {
    return this.ask<RuntimeReport>((id) => ({ type: 'report-request', id }), REPORT_TIMEOUT_MS, this.servers()).then((r) => r.sort((a, b) => a.pids[0]! - b.pids[0]!));
  }

  async report(): Promise<RuntimeReport> {
    const reports = await this.workerReports();
    const merged = mergeReports(reports) ?? { version: VERSION, pids: [], generation: 0, connections: 0, upstreams: [], process: processStatsData() };
    if (healthTransitions.size > 0) {
      for (const u of merged.upstreams) {
        for (const s of u.servers) {
          const t = healthTransitions.get(`${s.upstream}/${s.address}`);
          if (t === undefined) continue;
          s.wentDown += t.down;
          s.cameUp += t.up;
        }
      }
    }
    return merged;
  }

  async applyOp(op: ServerOp): Promise<OpResult> {
    const config = this.loaded?.config.http.upstreams.find((u) => u.name === op.upstream);
    const result = this.membership.apply(op, config);
    if (!result.ok) return result;
    const answers = await this.ask<OpResult>((id) => ({ type: 'server-op', id, op }), OP_TIMEOUT_MS);
    const failed = answers.find((a) => !a.ok);
    if (failed !== undefined) log().error({ op, error: failed.ok ? '' : failed.error }, 'a worker refused an admin change the supervisor accepted');
    log().info({ op: op.op, upstream: op.upstream, server: op.server, workers: answers.length }, 'upstream changed by the admin API');
    return result;
  }

  reload(): Promise<ReloadResult> {
    return this.host.reload();
  }

  reloads(): ReloadStats {
    return this.reloadStats;
  }

  certificates(): CertificateRef[] {
    return certificatesOf(this.table);
  }

  discovery(): DiscoveryStats | undefined {
    return this.finder.stats;
  }

  // ------------------------------------------------------------------ discovery

  private discovered(upstream: string, source: string, servers: DiscoveredServer[] | undefined): void {
    if (!this.membership.setDiscovered(upstream, source, servers)) return;
    for (const w of this.members()) send(w, { type: 'discovered', upstream, source, servers: servers ?? null });
    const config = this.loaded?.config.http.upstreams.find((u) => u.name === upstream);
    if (config !== undefined) log().info({ upstream, servers: this.membership.effective(config).map((m) => m.address) }, 'upstream servers changed');
  }

  // ------------------------------------------------------------------ least_conn counts

  private scheduleLoadFlush(): void {
    if (this.loadTimer !== undefined) return;
    this.loadTimer = setTimeout(() => {
      this.loadTimer = undefined;
      this.flushLoad();
    }, LOAD_FLUSH_MS);
    this.loadTimer.unref();
  }

  /** Sends each worker the sum of the other workers' requests in flight, for the servers where it changed. */
  private flushLoad(): void {
    const total = new Map<string, number>();
    for (const m of this.load.values()) for (const [key, n] of m) total.set(key, (total.get(key) ?? 0) + n);
    for (const w of this.members()) {
      const own = this.load.get(w);
      let sent = this.sent.get(w);
      if (sent === undefined) this.sent.set(w, (sent = new Map()));
      const changes: [string, number][] = [];
      for (const [key, n] of total) {
        const remote = n - (own?.get(key) ?? 0);
        if ((sent.get(key) ?? 0) !== remote) {
          changes.push([key, remote]);
          if (remote === 0) sent.delete(key);
          else sent.set(key, remote);
        }
      }
      for (const key of [...sent.keys()]) {
        if (total.has(key)) continue;
        changes.push([key, 0]);
        sent.delete(key);
      }
      if (changes.length > 0) send(w, { type: 'remote-load', load: changes });
    }
  }

  // ------------------------------------------------------------------ requests to every worker

  private ask<T>(make: (id: number) => ToWorker, timeoutMs: number, workers = this.members()): Promise<T[]> {
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise<T[]>((resolve) => {
      const timer = setTimeout(() => this.settle(id), timeoutMs);
      this.pending.set(id, { waiting: new Set(workers), results: [], resolve: resolve as (r: unknown[]) => void, timer });
      for (const w of workers) send(w, make(id));
    });
  }

  private settle(id: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(p.results);
  }

  // ------------------------------------------------------------------ binary upgrade

  /** SIGUSR2: a new fulcrum takes the listening sockets over; this cluster stops once it is ready. */
  async upgrade(): Promise<void> {
    if (this.upgrading) return;
    this.upgrading = true;
    const handles = new Map<string, { fd?: number; close?: () => void }>();
    try {
      const worker = this.servers()[0];
      if (worker === undefined) throw new Error('no worker to take the listening sockets from');
      const id = this.nextId++;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the worker did not hand its listening sockets over')), 5000);
        this.fdRequests.set(id, {
          fds: handles,
          done: (count) => {
            clearTimeout(timer);
            if (handles.size === count) resolve();
            else reject(new Error(`got ${handles.size} of ${count} listening sockets`));
          },
        });
        send(worker, { type: 'listen-fds-request', id });
      }).finally(() => this.fdRequests.delete(id));
      const fds = new Map<string, number>();
      for (const [key, h] of handles) if (typeof h.fd === 'number' && h.fd >= 0) fds.set(key, h.fd);
      const settings = this.loaded === undefined ? undefined : adminSettings(this.loaded.config);
      if (settings !== undefined && this.admin.fd !== undefined) fds.set(adminFdKey(settings.listen), this.admin.fd);
      const pid = await spawnReplacement(fds);
      log().info({ newPid: pid }, 'binary upgrade: the new process serves; this one stops');
      this.host.stop();
    } catch (err) {
      log().error({ error: (err as Error).message }, 'binary upgrade failed: this process keeps serving');
      this.upgrading = false;
    } finally {
      for (const h of handles.values()) h.close?.();
    }
  }
}

function send(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}
