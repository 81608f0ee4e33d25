/**
 * The supervisor (nginx's master process) for `worker_processes N` with
 * N > 1: validates the configuration, forks the workers, replaces a worker
 * that dies, and coordinates reload and shutdown. It never handles traffic.
 *
 * Listening sockets are shared with cluster's SCHED_NONE policy: the
 * supervisor binds each socket once and every worker accepts on it, so
 * connections are handed out by the kernel with no hop through this process
 * (a worker that got more than its share of a burst passes the excess on:
 * src/lifecycle/connection-spread.ts). The sockets stay open across reloads
 * because the workers keep their servers, and a worker replaced after a crash gets the same sockets.
 *
 * The control plane (discovery, admin API, /metrics, status page, config
 * watch, binary upgrade, cross-worker least_conn counts) runs here too:
 * src/lifecycle/cluster-ops.ts.
 */
import cluster, { type Worker } from 'node:cluster';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { getCommandLineDirectives, loadConfig, type ConfigFormat, type LoadedConfig } from '../config/load.js';
import { LogSinks } from '../log/access-log.js';
import { configureErrorLog, log } from '../log/error-log.js';
import { ticketKeySeed } from '../tls/context.js';
import { compile } from '../runtime/compile.js';
import { inheritedFdsFromEnv, LISTEN_FDS_ENV, type ReloadResult } from '../runtime/runtime.js';
import type { RuntimeTable } from '../runtime/table.js';
import { AcmeService, acmeSpecsOf } from '../tls/acme/service.js';
import type { AcmeServerSpec } from '../tls/acme/spec.js';
import { ServerRegistry } from '../upstream/group.js';
import { ClusterHealth } from './cluster-health.js';
import { ClusterOps } from './cluster-ops.js';
import { ConnectionSpread } from './connection-spread.js';
import { isFromWorker, type FromWorker, type ToWorker } from './messages.js';
import { closeFds, SignalDispatch } from './single.js';
import { movePidFile, pidFileOf, removePidFile, writePidFile } from './pid-file.js';
import { adminFdKey, notifyUpgradeReady } from './upgrade.js';

export interface SupervisorOptions {
  configPath: string;
  format: ConfigFormat | undefined;
  workers: number;
}

const RESPAWN_MIN_MS = 100;
const RESPAWN_MAX_MS = 5000;

/** Validates without side effects; returns the error text or undefined. */
export function validateConfig(
  configPath: string,
  format: ConfigFormat | undefined,
): { error?: string; shutdownTimeoutMs?: number; errorLog?: { path: string; level: string }; acme?: AcmeServerSpec[]; loaded?: LoadedConfig; table?: RuntimeTable } {
  try {
    const loaded = loadConfig(configPath, { format });
    const { table } = compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 0, dryRun: true });
    return { shutdownTimeoutMs: loaded.config.worker_shutdown_timeout, errorLog: loaded.config.error_log, acme: acmeSpecsOf(table), loaded, table };
  } catch (err) {
    return { error: err instanceof ConfigError ? err.diagnostics.map(formatDiagnostic).join('\n') : (err as Error).message };
  }
}

export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const first = validateConfig(options.configPath, options.format);
  if (first.error !== undefined) {
    process.stderr.write(first.error + '\n');
    log().error({}, 'configuration is invalid: not started');
    return 1;
  }
  configureErrorLog(first.errorLog!.path, first.errorLog!.level);
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const inherited = new InheritedSockets(first.table!);
  cluster.setupPrimary({
    exec: path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-main.js'),
    args: [
      '--config',
      options.configPath,
      ...(options.format === undefined ? [] : ['--format', options.format]),
      ...(getCommandLineDirectives() === undefined ? [] : ['--global', getCommandLineDirectives()!]),
    ],
    ...inherited.stdio(),
  });

  const supervisor = new Supervisor(options, first.shutdownTimeoutMs ?? 30_000, inherited);
  return supervisor.run();
}

class Supervisor {
  private readonly workers = new Set<Worker>();
  private stopping = false;
  private respawnDelay = RESPAWN_MIN_MS;
  private pendingReload: { waiting: Set<Worker>; errors: string[]; resolve(r: ReloadResult): void; checked: ReturnType<typeof validateConfig> } | undefined;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private readonly ops: ClusterOps;
  private readonly spread = new ConnectionSpread(() => [...this.workers]);
  private pidFile: string | undefined;
  private resolveRun: ((code: number) => void) | undefined;
  /** Built-in ACME runs here, once, for every worker: they pick certificates up from acme_storage. */
  private readonly acme = new AcmeService();
  /** Active health checks run here, once, and their verdicts go to every worker. */
  private readonly health = new ClusterHealth((verdicts) => this.broadcast({ type: 'health', verdicts }));

  constructor(
    private readonly options: SupervisorOptions,
    private shutdownTimeoutMs: number,
    private readonly inherited: InheritedSockets,
  ) {
    this.ops = new ClusterOps({
      configPath: options.configPath,
      format: options.format,
      workers: () => [...this.workers],
      reload: () => this.reload(),
      stop: () => void this.shutdown(true).then(() => this.resolveRun?.(0)),
    });
  }

  async run(): Promise<number> {
    const signals = new SignalDispatch();
    // Made before the first fork, so every worker derives the same session ticket keys.
    ticketKeySeed();
    const started = await Promise.all(Array.from({ length: this.options.workers }, () => this.fork()));
    const failure = started.find((r) => r !== undefined);
    if (failure !== undefined) {
      log().error({ error: failure }, 'failed to start');
      this.stopping = true;
      for (const w of this.workers) w.kill('SIGKILL');
      return 1;
    }
    const checked = validateConfig(this.options.configPath, this.options.format);
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    try {
      if (checked.loaded !== undefined) {
        const adminFd = this.inherited.takeAdmin(checked.loaded);
        await this.ops.configure(checked.loaded, checked.table!, true, adminFd);
        this.health.configure(checked.loaded, this.ops.membership);
        this.pidFile = pidFileOf(checked.loaded);
      }
    } catch (err) {
      log().error({ error: `admin listener: ${(err as Error).message}` }, 'failed to start');
      await this.shutdown();
      return 1;
    }
    this.inherited.closeAdmin();
    if (this.pidFile !== undefined) writePidFile(this.pidFile);
    log().info({ workers: this.workers.size }, 'ready');
    notifyUpgradeReady();
    this.acme.update(checked.acme ?? []);
    return new Promise((resolve) => {
      this.resolveRun = resolve;
      const stop = (): void => void this.shutdown().then(() => resolve(0));
      signals.ready({
        SIGHUP: () => void this.reload(),
        SIGUSR1: () => this.broadcast({ type: 'reopen-logs' }),
        SIGUSR2: () => void this.ops.upgrade(),
        SIGTERM: stop,
        SIGINT: stop,
        SIGQUIT: stop,
      });
    });
  }

  /** Forks one worker and resolves when it is ready (undefined) or failed (the error). */
  private fork(): Promise<string | undefined> {
    const worker = cluster.fork();
    this.workers.add(worker);
    // A message to a worker that is exiting fails with EPIPE, emitted as 'error' on the Worker: without a
    // listener that would crash the supervisor (seen while stopping, from a connection-count broadcast).
    // The worker's exit is handled by onExit.
    worker.on('error', (err: NodeJS.ErrnoException) => log().debug({ pid: worker.process.pid, error: err.message }, 'message to a worker not delivered'));
    return new Promise((resolve) => {
      const onMessage = (m: unknown): void => {
        if (!isFromWorker(m)) return;
        if (m.type === 'ready') {
          if (worker.isConnected()) worker.send({ type: 'health', verdicts: this.health.verdicts() } satisfies ToWorker);
          resolve(undefined);
        }
        else if (m.type === 'start-failed') resolve(m.error);
      };
      worker.on('message', onMessage);
      worker.on('message', (m: unknown, handle: unknown) => isFromWorker(m) && this.onMessage(worker, m, handle));
      worker.once('exit', () => resolve(`worker ${worker.process.pid} exited during start`));
    });
  }

  private onMessage(from: Worker, m: FromWorker, handle?: unknown): void {
    if (this.ops.onMessage(from, m, handle) || this.spread.onMessage(from, m, handle)) return;
    switch (m.type) {
      case 'passive':
        for (const w of this.workers) if (w !== from && w.isConnected()) w.send({ type: 'passive', op: m.op } satisfies ToWorker);
        return;
      case 'rotation':
        for (const w of this.workers) if (w !== from && w.isConnected()) w.send({ type: 'rotation', key: m.key, cursor: m.cursor } satisfies ToWorker);
        return;
      case 'reloaded':
      case 'reload-failed':
        if (this.pendingReload === undefined) return;
        this.pendingReload.waiting.delete(from);
        if (m.type === 'reload-failed') this.pendingReload.errors.push(m.error);
        if (this.pendingReload.waiting.size === 0) this.finishReload();
        return;
      default:
        return;
    }
  }

  /** SIGHUP, the config watch or the admin API: one reload at a time; resolves when every worker has answered. */
  reload(): Promise<ReloadResult> {
    const next = this.reloadChain.then(() => this.reloadNow());
    this.reloadChain = next.catch(() => undefined);
    return next;
  }

  private reloadNow(): Promise<ReloadResult> {
    if (this.stopping) return Promise.resolve({ ok: false, error: 'stopping' });
    const checked = validateConfig(this.options.configPath, this.options.format);
    if (checked.error !== undefined) {
      log().error({ error: checked.error }, 'reload failed');
      this.ops.noteReload(false);
      return Promise.resolve({ ok: false, error: checked.error });
    }
    this.shutdownTimeoutMs = checked.shutdownTimeoutMs ?? this.shutdownTimeoutMs;
    configureErrorLog(checked.errorLog!.path, checked.errorLog!.level);
    this.inherited.retain(checked.table!);
    const done = new Promise<ReloadResult>((resolve) => {
      this.pendingReload = { waiting: new Set(this.workers), errors: [], resolve, checked };
    });
    this.broadcast({ type: 'reload' });
    this.acme.update(checked.acme ?? []);
    if (this.workers.size === 0) this.finishReload();
    return done;
  }

  private finishReload(): void {
    const pending = this.pendingReload!;
    this.pendingReload = undefined;
    const { errors, checked } = pending;
    if (errors.length === 0) log().info({}, 'reloaded');
    else log().error({ error: errors[0] }, 'reload failed');
    this.ops.noteReload(errors.length === 0);
    if (errors.length === 0) this.pidFile = movePidFile(this.pidFile, pidFileOf(checked.loaded!));
    if (errors.length === 0) this.health.configure(checked.loaded!, this.ops.membership);
    void this.ops.configure(checked.loaded!, checked.table!, false).then(() => pending.resolve(errors.length === 0 ? { ok: true } : { ok: false, error: errors[0]! }));
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.workers.delete(worker);
    this.ops.workerGone(worker);
    this.spread.workerGone(worker);
    if (this.pendingReload?.waiting.delete(worker) === true && this.pendingReload.waiting.size === 0) this.finishReload();
    if (this.stopping) return;
    log().error({ pid: worker.process.pid, code, signal }, 'worker died: starting a new one');
    const delay = this.respawnDelay;
    this.respawnDelay = Math.min(this.respawnDelay * 2, RESPAWN_MAX_MS);
    setTimeout(() => {
      if (this.stopping) return;
      void this.fork().then((error) => {
        if (error === undefined) this.respawnDelay = RESPAWN_MIN_MS;
        else log().error({ error }, 'replacement worker failed to start');
      });
    }, delay).unref();
  }

  private broadcast(message: ToWorker): void {
    for (const w of this.workers) if (w.isConnected()) w.send(message);
  }

  /** `handover`: a binary upgrade's new process serves now; workers let keep-alive clients leave first. */
  private async shutdown(handover = false): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    log().info({}, 'stopping');
    this.acme.stop();
    this.health.stop();
    this.spread.stop();
    await this.ops.stop();
    const exits = [...this.workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    this.broadcast(handover ? { type: 'handover-stop' } : { type: 'shutdown' });
    const deadline = setTimeout(() => {
      for (const w of this.workers) w.kill('SIGKILL');
    }, this.shutdownTimeoutMs + 2000);
    deadline.unref();
    await Promise.all(exits);
    clearTimeout(deadline);
    removePidFile(this.pidFile);
    log().info({}, 'stopped');
  }
}

/**
 * Listening sockets inherited from the process this supervisor replaced
 * (binary upgrade). The supervisor keeps them open for its whole life and
 * every worker gets them as inherited descriptors at the same numbers
 * (cluster's stdio), listening with `exclusive` so no worker asks the
 * supervisor to bind the address again (that would fail: the inherited
 * socket holds it). A socket the configuration stops listening on is closed.
 */
class InheritedSockets {
  private readonly fds: Map<string, number>;
  private readonly admin: Map<string, number>;

  constructor(table: RuntimeTable) {
    const all = inheritedFdsFromEnv();
    this.admin = new Map([...all].filter(([key]) => key.startsWith('admin ')));
    this.fds = new Map([...all].filter(([key]) => !key.startsWith('admin ')));
    this.retain(table);
  }

  /** Options for cluster.setupPrimary: the descriptors at their own numbers. */
  stdio(): { stdio?: (string | number)[] } {
    if (this.fds.size === 0) return {};
    const stdio: (string | number)[] = [0, 1, 2, 'ipc'];
    for (const fd of this.fds.values()) {
      while (stdio.length < fd) stdio.push('ignore');
      stdio[fd] = fd;
    }
    return { stdio };
  }

  /** Closes inherited sockets the table does not listen on; workers forked later no longer get them. */
  retain(table: RuntimeTable): void {
    const keys = new Set(table.listeners.map((l) => l.key));
    const gone = new Map([...this.fds].filter(([key]) => !keys.has(key)));
    if (gone.size === 0) {
      this.publish();
      return;
    }
    closeFds(gone);
    for (const key of gone.keys()) this.fds.delete(key);
    this.publish();
    cluster.setupPrimary({ ...this.stdio(), ...(this.fds.size === 0 ? { stdio: [0, 1, 2, 'ipc'] } : {}) });
  }

  takeAdmin(loaded: LoadedConfig): number | undefined {
    const listen = loaded.config.admin?.listen;
    if (listen === undefined) return undefined;
    const fd = this.admin.get(adminFdKey(listen));
    this.admin.delete(adminFdKey(listen));
    return fd;
  }

  closeAdmin(): void {
    closeFds(this.admin);
    this.admin.clear();
  }

  private publish(): void {
    if (this.fds.size === 0) delete process.env[LISTEN_FDS_ENV];
    else process.env[LISTEN_FDS_ENV] = JSON.stringify(Object.fromEntries(this.fds));
  }
}
