/**
 * `worker_processes 1` (the default): one process serves traffic and runs the
 * control plane too: service discovery, the admin listener (API, /metrics,
 * status page), the config watch, signals and the binary upgrade.
 *
 *   SIGHUP   reload            SIGTERM, SIGINT, SIGQUIT  graceful stop (twice: at once)
 *   SIGUSR1  reopen log files  SIGUSR2          binary upgrade (src/lifecycle/upgrade.ts)
 */
import * as fs from 'node:fs';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import type { ConfigFormat } from '../config/load.js';
import { LocalControl } from '../admin/control.js';
import { AdminServer, adminSettings } from '../admin/server.js';
import { Discovery } from '../discovery/discovery.js';
import { log } from '../log/error-log.js';
import { inheritedFdsFromEnv, LISTEN_FDS_ENV, Runtime, type ReloadResult } from '../runtime/runtime.js';
import { ConfigWatcher } from './config-watch.js';
import { movePidFile, pidFileOf, removePidFile, writePidFile } from './pid-file.js';
import { adminFdKey, HANDOVER_DRAIN_MS, notifyUpgradeReady, spawnReplacement } from './upgrade.js';

export async function runSingle(configPath: string, format: ConfigFormat | undefined): Promise<number> {
  const inherited = inheritedFdsFromEnv();
  delete process.env[LISTEN_FDS_ENV];
  const adminFds = new Map([...inherited].filter(([key]) => key.startsWith('admin ')));
  for (const key of adminFds.keys()) inherited.delete(key);

  const signals = new SignalDispatch();

  const runtime = new Runtime({ configPath, format, inheritedFds: inherited, quiet: true });
  try {
    await runtime.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const d of err.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
      log().error({ errors: err.diagnostics.length }, 'configuration is invalid: not started');
    } else {
      log().error({ error: (err as Error).message }, 'failed to start');
    }
    return 1;
  }

  const discovery = new Discovery((upstream, source, servers) => runtime.setDiscovered(upstream, source, servers));
  let chain: Promise<unknown> = Promise.resolve();
  /** Reloads one at a time (SIGHUP, the config watch and the admin API may ask together). */
  const reload = (): Promise<ReloadResult> => {
    const next = chain.then(async () => {
      const r = await runtime.reload();
      if (r.ok) await afterConfig(false);
      return r;
    });
    chain = next.catch(() => undefined);
    return next;
  };
  const control = new LocalControl(runtime, reload, () => discovery.stats);
  const admin = new AdminServer(control);
  const watcher = new ConfigWatcher(() => void reload());
  let pidFile: string | undefined;
  const afterConfig = async (first: boolean): Promise<void> => {
    const loaded = runtime.loaded!;
    discovery.configure(loaded.config, loaded.baseDir);
    const settings = adminSettings(loaded.config);
    const fd = first && settings !== undefined ? adminFds.get(adminFdKey(settings.listen)) : undefined;
    if (fd !== undefined) adminFds.delete(adminFdKey(settings!.listen));
    try {
      await admin.configure(settings, fd);
    } catch (err) {
      if (first) throw err;
      log().error({ error: (err as Error).message }, 'admin listener not moved: keeping the old one');
    }
    if (loaded.config.watch_config) watcher.watch(loaded.files);
    else watcher.stop();
    pidFile = first ? pidFileOf(loaded) : movePidFile(pidFile, pidFileOf(loaded));
  };
  try {
    await afterConfig(true);
  } catch (err) {
    log().error({ error: `admin listener: ${(err as Error).message}` }, 'failed to start');
    discovery.stop();
    await runtime.shutdown();
    return 1;
  }
  closeFds(adminFds);
  writePidFile(pidFile!);
  log().info({ generation: runtime.table?.generation, listeners: runtime.listenerNames(), admin: admin.address }, 'ready');
  notifyUpgradeReady();

  return new Promise((resolve) => {
    let stopping = false;
    let upgrading = false;
    const stop = (why: string, handover = false): void => {
      if (stopping) {
        log().warn({ signal: why }, 'second signal: stopping now');
        process.exit(1);
      }
      stopping = true;
      watcher.stop();
      discovery.stop();
      void admin
        .close()
        .then(() => runtime.shutdown(handover ? { handoverMs: HANDOVER_DRAIN_MS } : {}))
        .then(() => {
          removePidFile(pidFile);
          resolve(0);
        });
    };
    const upgrade = async (): Promise<void> => {
      if (upgrading || stopping) return;
      upgrading = true;
      const fds = runtime.listenFds();
      const settings = runtime.loaded === undefined ? undefined : adminSettings(runtime.loaded.config);
      if (settings !== undefined && admin.fd !== undefined) fds.set(adminFdKey(settings.listen), admin.fd);
      try {
        const pid = await spawnReplacement(fds);
        log().info({ newPid: pid }, 'binary upgrade: the new process serves; this one stops');
        if (!stopping) stop('SIGUSR2', true);
      } catch (err) {
        log().error({ error: (err as Error).message }, 'binary upgrade failed: this process keeps serving');
        upgrading = false;
      }
    };
    signals.ready({
      SIGTERM: () => stop('SIGTERM'),
      SIGINT: () => stop('SIGINT'),
      SIGQUIT: () => stop('SIGQUIT'),
      SIGHUP: () => void reload(),
      SIGUSR1: () => runtime.logSinks.reopen(),
      SIGUSR2: () => void upgrade(),
    });
  });
}

/**
 * Signal handlers installed once, at the very start, and never swapped: a
 * signal that arrives while starting must neither kill the process (SIGHUP's
 * default action) nor be lost (a handler removed and added again can drop a
 * signal delivered in between). Until ready(), SIGTERM, SIGINT and SIGQUIT are
 * remembered and acted on then; SIGHUP, SIGUSR1 and SIGUSR2 are ignored.
 */
export class SignalDispatch {
  static readonly SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'];
  private actions: Partial<Record<NodeJS.Signals, () => void>> | undefined;
  private early: NodeJS.Signals | undefined;

  constructor() {
    for (const sig of SignalDispatch.SIGNALS) process.on(sig, (s: NodeJS.Signals) => this.dispatch(s));
  }

  ready(actions: Partial<Record<NodeJS.Signals, () => void>>): void {
    this.actions = actions;
    if (this.early !== undefined) this.dispatch(this.early);
  }

  private dispatch(signal: NodeJS.Signals): void {
    if (this.actions === undefined) {
      if (signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGQUIT') this.early = signal;
      return;
    }
    this.actions[signal]?.();
  }
}

/** Inherited sockets nothing uses any more (the admin listener moved): closed, or clients would queue on them. */
export function closeFds(fds: ReadonlyMap<string, number>): void {
  for (const fd of fds.values()) {
    try {
      fs.closeSync(fd);
    } catch {
      // not open
    }
  }
}
