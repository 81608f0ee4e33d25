/**
 * The supervisor (nginx's master process) for `worker_processes N` with
 * N > 1: validates the configuration, forks the workers, replaces a worker
 * that dies, and coordinates reload and shutdown. It never handles traffic.
 *
 * Listening sockets are shared with cluster's SCHED_NONE policy: the
 * supervisor binds each socket once and every worker accepts on it, so
 * connections are spread by the kernel with no hop through this process.
 * (Node 20 has no SO_REUSEPORT; see docs/benchmarks.md for the balance we
 * measured.) The sockets stay open across reloads because the workers keep
 * their servers, and a worker replaced after a crash gets the same sockets.
 */
import cluster, { type Worker } from 'node:cluster';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { LogSinks } from '../log/access-log.js';
import { configureErrorLog, log } from '../log/error-log.js';
import { compile } from '../runtime/compile.js';
import { ServerRegistry } from '../upstream/group.js';
import { isFromWorker, type FromWorker, type ToWorker } from './messages.js';

export interface SupervisorOptions {
  configPath: string;
  format: ConfigFormat | undefined;
  workers: number;
}

const RESPAWN_MIN_MS = 100;
const RESPAWN_MAX_MS = 5000;

/** Validates without side effects; returns the error text or undefined. */
export function validateConfig(configPath: string, format: ConfigFormat | undefined): { error?: string; shutdownTimeoutMs?: number; errorLog?: { path: string; level: string } } {
  try {
    const loaded = loadConfig(configPath, { format });
    compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 0, dryRun: true });
    return { shutdownTimeoutMs: loaded.config.worker_shutdown_timeout, errorLog: loaded.config.error_log };
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
  cluster.setupPrimary({
    exec: path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-main.js'),
    args: ['--config', options.configPath, ...(options.format === undefined ? [] : ['--format', options.format])],
  });

  const supervisor = new Supervisor(options, first.shutdownTimeoutMs ?? 30_000);
  return supervisor.run();
}

class Supervisor {
  private readonly workers = new Set<Worker>();
  private stopping = false;
  private respawnDelay = RESPAWN_MIN_MS;
  private pendingReload: { waiting: Set<Worker>; errors: string[] } | undefined;

  constructor(
    private readonly options: SupervisorOptions,
    private shutdownTimeoutMs: number,
  ) {}

  async run(): Promise<number> {
    const started = await Promise.all(Array.from({ length: this.options.workers }, () => this.fork()));
    const failure = started.find((r) => r !== undefined);
    if (failure !== undefined) {
      log().error({ error: failure }, 'failed to start');
      this.stopping = true;
      for (const w of this.workers) w.kill('SIGKILL');
      return 1;
    }
    log().info({ workers: this.workers.size }, 'ready');
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    return new Promise((resolve) => {
      process.on('SIGHUP', () => this.reload());
      process.on('SIGUSR1', () => this.broadcast({ type: 'reopen-logs' }));
      const stop = (): void => void this.shutdown().then(() => resolve(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
  }

  /** Forks one worker and resolves when it is ready (undefined) or failed (the error). */
  private fork(): Promise<string | undefined> {
    const worker = cluster.fork();
    this.workers.add(worker);
    return new Promise((resolve) => {
      const onMessage = (m: unknown): void => {
        if (!isFromWorker(m)) return;
        if (m.type === 'ready') resolve(undefined);
        else if (m.type === 'start-failed') resolve(m.error);
      };
      worker.on('message', onMessage);
      worker.on('message', (m: unknown) => isFromWorker(m) && this.onMessage(worker, m));
      worker.once('exit', () => resolve(`worker ${worker.process.pid} exited during start`));
    });
  }

  private onMessage(from: Worker, m: FromWorker): void {
    switch (m.type) {
      case 'passive':
        for (const w of this.workers) if (w !== from && w.isConnected()) w.send({ type: 'passive', op: m.op } satisfies ToWorker);
        return;
      case 'reloaded':
      case 'reload-failed':
        if (this.pendingReload === undefined) return;
        this.pendingReload.waiting.delete(from);
        if (m.type === 'reload-failed') this.pendingReload.errors.push(m.error);
        if (this.pendingReload.waiting.size === 0) {
          const { errors } = this.pendingReload;
          this.pendingReload = undefined;
          if (errors.length === 0) log().info({}, 'reloaded');
          else log().error({ error: errors[0] }, 'reload failed');
        }
        return;
      default:
        return;
    }
  }

  private reload(): void {
    if (this.stopping) return;
    const checked = validateConfig(this.options.configPath, this.options.format);
    if (checked.error !== undefined) {
      log().error({ error: checked.error }, 'reload failed');
      return;
    }
    this.shutdownTimeoutMs = checked.shutdownTimeoutMs ?? this.shutdownTimeoutMs;
    configureErrorLog(checked.errorLog!.path, checked.errorLog!.level);
    this.pendingReload = { waiting: new Set(this.workers), errors: [] };
    this.broadcast({ type: 'reload' });
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.workers.delete(worker);
    this.pendingReload?.waiting.delete(worker);
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

  private async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    log().info({}, 'stopping');
    const exits = [...this.workers].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    this.broadcast({ type: 'shutdown' });
    const deadline = setTimeout(() => {
      for (const w of this.workers) w.kill('SIGKILL');
    }, this.shutdownTimeoutMs + 2000);
    deadline.unref();
    await Promise.all(exits);
    clearTimeout(deadline);
    log().info({}, 'stopped');
  }
}
