/**
 * `fulcrum start`: runs the proxy in the foreground until a signal stops it.
 */
import * as os from 'node:os';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { runSingle } from '../lifecycle/single.js';
import { runSupervisor } from '../lifecycle/supervisor.js';
import { log } from '../log/error-log.js';
import { Runtime } from '../runtime/runtime.js';

/** worker_processes: 'auto' is one worker per CPU the process may use. */
export function workerCount(setting: 'auto' | number): number {
  return setting === 'auto' ? os.availableParallelism() : setting;
}

export async function runStart(configPath: string, format: ConfigFormat | undefined): Promise<number> {
  let workers = 1;
  try {
    workers = workerCount(loadConfig(configPath, { format }).config.worker_processes);
  } catch {
    // Reported with every detail by the start below.
  }
  if (workers > 1) return runSupervisor({ configPath, format, workers });
  return runSingle(configPath, format);
}

/** SIGHUP reloads, SIGUSR1 reopens logs, SIGTERM/SIGINT/SIGQUIT stop gracefully (a second one stops at once). */
export function waitForSignals(runtime: Runtime, onStop?: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        log().warn({ signal }, 'second signal: stopping now');
        process.exit(1);
      }
      stopping = true;
      void runtime
        .shutdown()
        .then(() => onStop?.())
        .then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGQUIT', () => stop('SIGQUIT'));
    process.on('SIGHUP', () => void runtime.reload());
    process.on('SIGUSR1', () => runtime.logSinks.reopen());
  });
}
