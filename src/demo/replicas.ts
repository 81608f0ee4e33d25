/**
 * Replicas of the demo backend as child processes, supervised like Docker
 * Compose's `restart: always` in the seed (`docker-compose up --scale backend=3`):
 * a replica that exits for any reason is started again on the same port, after
 * an exponential backoff (100 ms doubling to 5 s, back to 100 ms once a run
 * lasted 10 s). Compose's container names `<project>_backend_1..3` become
 * `backend_1..3`.
 *
 * No replica outlives this process: children are killed on 'exit', SIGINT and
 * SIGTERM, and each is spawned with an IPC channel whose closing (even when
 * this process is SIGKILLed) makes the backend exit by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EXIT_ADDRESS_IN_USE } from './backend.js';

export interface ReplicaEvent {
  type: 'started' | 'exited' | 'restarting';
  name: string;
  port: number;
  /** The process that started or exited; for `restarting`, the one that exited. */
  pid: number | undefined;
  /** `exited`: the exit code, or null when a signal ended the process. */
  code?: number | null;
  signal?: NodeJS.Signals | null;
  /** `restarting`: how long until the next start. */
  delayMs?: number;
}

export interface ReplicaOptions {
  count: number;
  host?: string;
  /** Replica i listens on basePort + i; without it every replica gets an ephemeral port (kept across restarts). */
  basePort?: number;
  /** Default `backend_`, so replicas are named backend_1, backend_2, ... */
  namePrefix?: string;
  /** Passed to every backend as --keep-alive-timeout. */
  keepAliveTimeoutMs?: number;
  /**
   * Default true (`restart: always`). When false, a replica that exits stays
   * down until `restart(i)`, which is what tests that kill backends want;
   * only a port still held by a previous process is retried briefly.
   */
  autoRestart?: boolean;
  /** How long start and restart wait for a replica to listen. Default 10 s. */
  startTimeoutMs?: number;
  onEvent?: (event: ReplicaEvent) => void;
}

export interface Replicas {
  readonly ports: readonly number[];
  readonly names: readonly string[];
  /** Current process id of replica i, undefined while it is down. */
  pid(i: number): number | undefined;
  /** Sends a signal (default SIGKILL, like `docker kill`) and resolves once that process has exited. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Stops replica i if it runs, starts it again on its port, and resolves once it listens. */
  restart(i: number): Promise<void>;
  /** SIGTERM to all (SIGKILL after 5 s), waits for every exit; nothing restarts afterwards. */
  stop(): Promise<void>;
}

/** The compiled backend lives next to this file (dist/src/demo/). */
const BACKEND_SCRIPT = fileURLToPath(new URL('./backend.js', import.meta.url));
const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
/** Without auto-restart, a port still taken is retried this many times (with the backoff delays, about 3 s). */
const ADDRESS_IN_USE_RETRIES = 5;

export async function startReplicas(opts: ReplicaOptions): Promise<Replicas> {
  if (!existsSync(BACKEND_SCRIPT)) throw new Error(`demo backend not found at ${BACKEND_SCRIPT}: run the build (tsc) first`);
  const prefix = opts.namePrefix ?? 'backend_';
  const replicas = Array.from({ length: opts.count }, (_, i) => new Replica(
    `${prefix}${i + 1}`,
    opts.basePort === undefined ? 0 : opts.basePort + i,
    opts,
  ));
  const stopAll = async () => {
    await Promise.all(replicas.map((r) => r.stop()));
  };
  try {
    await Promise.all(replicas.map((r) => r.start()));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    ports: replicas.map((r) => r.port),
    names: replicas.map((r) => r.name),
    pid: (i) => replicaAt(replicas, i).pid,
    kill: (i, signal = 'SIGKILL') => replicaAt(replicas, i).kill(signal),
    restart: (i) => replicaAt(replicas, i).restart(),
    stop: stopAll,
  };
}

function replicaAt(replicas: readonly Replica[], i: number): Replica {
  const replica = replicas[i];
  if (!replica) throw new RangeError(`no replica ${i} (there are ${replicas.length})`);
  return replica;
}

/**
 * Restart delays: starts at `initialMs`, doubles up to `maxMs`, and starts
 * over once a run lasted `stableRunMs` (a replica that ran fine for a while
 * and then crashed is not punished for old crashes).
 */
export class RestartBackoff {
  private nextDelayMs: number;

  constructor(
    private readonly initialMs = 100,
    private readonly maxMs = 5_000,
    private readonly stableRunMs = 10_000,
  ) {
    this.nextDelayMs = initialMs;
  }

  /** The delay before the next start, given how long the run that just ended lasted. */
  next(ranMs: number): number {
    if (ranMs >= this.stableRunMs) this.nextDelayMs = this.initialMs;
    const delay = this.nextDelayMs;
    this.nextDelayMs = Math.min(delay * 2, this.maxMs);
    return delay;
  }
}

interface ListeningWaiter {
  resolve(): void;
  reject(err: Error): void;
}

/** One supervised backend process; successive processes keep the name and port. */
class Replica {
  /** 0 until the first process reports its ephemeral port; then fixed for every restart. */
  port: number;
  private child: ChildProcess | undefined;
  private spawnedAt = 0;
  /** Set while stopping or restarting on purpose, so the exit that follows does not trigger a restart. */
  private exitExpected = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private addressInUseFailures = 0;
  private readonly backoff = new RestartBackoff();
  private waiters: ListeningWaiter[] = [];

  constructor(
    readonly name: string,
    port: number,
    private readonly opts: ReplicaOptions,
  ) {
    this.port = port;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the backend and resolves once it listens, possibly after automatic restarts. */
  start(): Promise<void> {
    this.exitExpected = false;
    this.addressInUseFailures = 0;
    const listening = this.nextListening();
    this.spawn();
    return listening;
  }

  async restart(): Promise<void> {
    await this.terminate();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.terminate();
    this.rejectWaiters(new Error(`${this.name} was stopped`));
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await exited(child);
  }

  private async terminate(): Promise<void> {
    this.exitExpected = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited(child);
    clearTimeout(escalation);
  }

  private spawn(): void {
    const args = [BACKEND_SCRIPT, '--port', String(this.port), '--name', this.name, '--host', this.opts.host ?? '127.0.0.1'];
    if (this.opts.keepAliveTimeoutMs !== undefined) args.push('--keep-alive-timeout', String(this.opts.keepAliveTimeoutMs));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    this.child = child;
    this.spawnedAt = Date.now();
    killWithParent(child);
    createInterface({ input: child.stdout! }).on('line', (line) => this.onOutputLine(child, line));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
  }

  private onOutputLine(child: ChildProcess, line: string): void {
    let message: { event?: unknown; port?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return;
    }
    if (message.event !== 'listening' || typeof message.port !== 'number') return;
    this.port = message.port;
    this.addressInUseFailures = 0;
    this.emit({ type: 'started', pid: child.pid });
    for (const waiter of this.takeWaiters()) waiter.resolve();
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = undefined;
    this.emit({ type: 'exited', pid: child.pid, code, signal });
    if (this.shouldRestart(code)) {
      const delayMs = this.backoff.next(Date.now() - this.spawnedAt);
      this.emit({ type: 'restarting', pid: child.pid, delayMs });
      this.restartTimer = setTimeout(() => this.spawn(), delayMs);
    } else {
      this.rejectWaiters(new Error(`${this.name} exited before listening (code ${code}, signal ${signal})`));
    }
  }

  private shouldRestart(code: number | null): boolean {
    if (this.exitExpected) return false;
    if (this.opts.autoRestart ?? true) return true;
    // Unsupervised: only retry a port that is briefly still held (e.g. by the process that just died).
    return code === EXIT_ADDRESS_IN_USE && ++this.addressInUseFailures <= ADDRESS_IN_USE_RETRIES;
  }

  private nextListening(): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name} did not listen on port ${this.port || '(ephemeral)'} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: ListeningWaiter = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      this.waiters.push(waiter);
    });
  }

  private takeWaiters(): ListeningWaiter[] {
    const waiters = this.waiters;
    this.waiters = [];
    return waiters;
  }

  private rejectWaiters(err: Error): void {
    for (const waiter of this.takeWaiters()) waiter.reject(err);
  }

  private emit(event: Omit<ReplicaEvent, 'name' | 'port'>): void {
    this.opts.onEvent?.({ name: this.name, port: this.port, ...event });
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

// ---------------------------------------------------------------------------
// Children die with this process

const childrenToKill = new Set<ChildProcess>();
const forwardedSignals = ['SIGINT', 'SIGTERM'] as const;
let exitHooksInstalled = false;

/**
 * Kills `child` when this process exits or receives SIGINT/SIGTERM. Exported
 * for other code that spawns helper processes (the test support library).
 */
export function killWithParent(child: ChildProcess): void {
  installExitHooks();
  childrenToKill.add(child);
  child.once('exit', () => {
    childrenToKill.delete(child);
    if (childrenToKill.size === 0) removeExitHooks();
  });
}

function killChildren(signal: NodeJS.Signals): void {
  for (const child of childrenToKill) child.kill(signal);
}

function killChildrenAtExit(): void {
  // Only synchronous work is possible in 'exit': SIGKILL is the one signal that needs no waiting.
  killChildren('SIGKILL');
}

function killChildrenOnSignal(signal: NodeJS.Signals): void {
  killChildren('SIGTERM');
  // A listener disables Node's default "terminate on signal". When nobody else
  // handles the signal, restore that default and raise it again.
  if (process.listenerCount(signal) === 1) {
    removeExitHooks();
    process.kill(process.pid, signal);
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killChildrenAtExit);
  for (const signal of forwardedSignals) process.on(signal, killChildrenOnSignal);
}

function removeExitHooks(): void {
  exitHooksInstalled = false;
  process.off('exit', killChildrenAtExit);
  for (const signal of forwardedSignals) process.off(signal, killChildrenOnSignal);
}
