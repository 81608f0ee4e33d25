/**
 * Binary upgrade without downtime (nginx's USR2, HAProxy's `-x`): on SIGUSR2
 * the running fulcrum starts a new fulcrum process (the same command line,
 * so the files now installed at that path: a new version) and hands it its
 * listening sockets as inherited file descriptors, listed in
 * FULCRUM_LISTEN_FDS. The new process listens on them (`listen({ fd })`),
 * so the sockets never close and no connection is refused; it loads its own
 * configuration and tells the old one over an IPC channel when it is ready.
 * The old one then stops accepting and finishes what is in flight (up to
 * worker_shutdown_timeout), like a SIGTERM. If the new process fails to start
 * or is not ready in time, it is stopped and the old one keeps serving.
 *
 * With workers the supervisor gets the sockets from a worker (they are
 * passed as handles over IPC), and the new supervisor gives them to its
 * workers as inherited descriptors too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { log } from '../log/error-log.js';
import { LISTEN_FDS_ENV } from '../runtime/runtime.js';

/** Set in the new process: the pid of the process it replaces. */
export const UPGRADE_FROM_ENV = 'FULCRUM_UPGRADE_FROM';
const READY_TIMEOUT_MS = 60_000;
/** How long the old process lets keep-alive clients leave by themselves (Connection: close) before closing idle connections. */
export const HANDOVER_DRAIN_MS = 1000;
/** Inherited sockets start at this descriptor (0-2 stdio, 3 the IPC channel). */
const FIRST_FD = 4;

/** The key under which the admin listener's socket is handed over. */
export function adminFdKey(listen: string): string {
  return `admin ${listen}`;
}

/**
 * Starts the replacement with `fds` (key -> descriptor in this process) and
 * resolves with its pid once it is ready; rejects if it exits or is not
 * ready within a minute (it is killed then).
 */
export function spawnReplacement(fds: ReadonlyMap<string, number>): Promise<number> {
  const entries = [...fds.entries()];
  const map: Record<string, number> = {};
  entries.forEach(([key], i) => (map[key] = FIRST_FD + i));
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...entries.map(([, fd]) => fd)],
    env: { ...process.env, [LISTEN_FDS_ENV]: JSON.stringify(map), [UPGRADE_FROM_ENV]: String(process.pid) },
  });
  log().info({ newPid: child.pid, sockets: Object.keys(map) }, 'binary upgrade: new process started');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error('the new process was not ready within a minute'));
    }, READY_TIMEOUT_MS);
    const onMessage = (m: unknown): void => {
      if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'upgrade-ready') return;
      cleanup();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(child.pid!);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`the new process exited before it was ready (code ${code}, signal ${signal})`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** In the new process, once it serves: tells the old one to stop. */
export function notifyUpgradeReady(): void {
  if (process.env[UPGRADE_FROM_ENV] === undefined) return;
  delete process.env[UPGRADE_FROM_ENV];
  if (process.send !== undefined && process.connected) {
    process.send({ type: 'upgrade-ready' }, () => {
      if (process.connected) process.disconnect();
    });
  }
}

/** The listening socket descriptor of a net.Server (undefined when not listening). */
export function serverFd(server: unknown): number | undefined {
  const fd = (server as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
