/**
 * Child processes of the harness: started pinned to a core with `taskset`,
 * each in its own process group, tracked so that every one of them (and its
 * own children, e.g. nginx workers) is killed on exit, on SIGINT/SIGTERM and
 * on error. Nothing the harness starts may outlive it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { liveGroupMembers } from './procfs.js';

export interface StartOptions {
  /** `taskset -c` CPU list, e.g. "0" or "0-1"; undefined inherits the harness's affinity. */
  cpus?: string | undefined;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep all of stdout (for wrk and the clients); otherwise only a tail. */
  keepStdout?: boolean;
  /** Give the child a stdin pipe (the idle client is driven through it). */
  stdin?: boolean;
}

const TAIL_BYTES = 8 * 1024;

/** Every process started and not yet known to be gone. */
const live = new Set<ManagedProcess>();
/** Every pid ever started (each leads its own process group), for the final check. */
const started: number[] = [];

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  private stdoutText = '';
  private stderrText = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    argv: readonly string[],
    options: StartOptions = {},
  ) {
    const full = options.cpus !== undefined ? ['taskset', '-c', options.cpus, ...argv] : [...argv];
    // detached: the child leads its own process group, so one kill(-pid)
    // reaches the processes it forks too (nginx and HAProxy workers, fulcrum
    // workers). taskset and `sh -c exec` exec in place, keeping the pid.
    this.child = spawn(full[0]!, full.slice(1), {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error').
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (s: string) => {
      this.stdoutText = options.keepStdout ? this.stdoutText + s : tail(this.stdoutText + s);
    });
    this.child.stderr!.on('data', (s: string) => {
      this.stderrText = tail(this.stderrText + s);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderrText = tail(`${this.stderrText}${err.message}\n`);
        this.exitInfo ??= { code: null, signal: null };
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    live.add(this);
    if (this.pid > 0) started.push(this.pid);
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  get exitDescription(): string {
    if (!this.exitInfo) return 'running';
    const { code, signal } = this.exitInfo;
    return signal ? `killed by ${signal}` : `exit code ${code}`;
  }

  get exitCode(): number | null {
    return this.exitInfo?.code ?? null;
  }

  get stdout(): string {
    return this.stdoutText;
  }

  /** The last lines of stderr, for failure messages. */
  stderrTail(lines = 12): string {
    return this.stderrText.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Resolves when the process exits, or after timeoutMs (returns whether it exited). */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    if (this.hasExited) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.exited.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer); // a pending timer would keep the harness alive at the end
    }
  }

  /**
   * SIGTERM (a graceful stop for nginx, HAProxy and fulcrum), then SIGKILL to
   * the whole group if it has not exited within graceMs. Returns only once
   * the whole group is gone, workers included.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.hasExited) signalProcess(this.pid, 'SIGTERM');
    const exited = await this.waitForExit(graceMs);
    if (!exited) {
      signalGroup(this.pid, 'SIGKILL');
      await this.waitForExit(2000);
    }
    // Workers of a master that exited without waiting for them: give them a
    // moment to finish on their own, then kill them. Either way, wait until
    // they are gone, so that nothing of this proxy runs during the next one.
    if (!(await waitUntilGroupGone(this.pid, 2000))) {
      signalGroup(this.pid, 'SIGKILL');
      await waitUntilGroupGone(this.pid, 2000);
    }
    live.delete(this);
  }

  /** Immediate SIGKILL of the group, for exit paths that cannot wait. */
  killNow(): void {
    signalGroup(this.pid, 'SIGKILL');
    live.delete(this);
  }

  /** Writes to the child's stdin (started with stdin: true). */
  send(text: string): void {
    this.child.stdin?.write(text);
  }
}

function tail(s: string): string {
  return s.length > TAIL_BYTES ? s.slice(s.length - TAIL_BYTES) : s;
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function groupIsAlive(pid: number): boolean {
  return pid > 0 && liveGroupMembers(pid).length > 0;
}

async function waitUntilGroupGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupIsAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Process groups started by the harness that still have members at the end
 * (there should be none); they are SIGKILLed, and returned for a warning.
 */
export function killLeftovers(): number[] {
  const alive = started.filter(groupIsAlive);
  for (const pid of alive) signalGroup(pid, 'SIGKILL');
  return alive;
}

export function startedCount(): number {
  return started.length;
}

/** Process groups of everything the harness started (each child leads one). */
export function ownProcessGroups(): Set<number> {
  return new Set(started);
}

/** SIGKILLs every tracked process group. Synchronous, so it works in 'exit'. */
export function killAllSync(): void {
  for (const p of live) p.killNow();
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to completion, killing it if it takes longer than timeoutMs. */
export async function runBounded(
  name: string,
  argv: readonly string[],
  timeoutMs: number,
  options: Omit<StartOptions, 'keepStdout'> = {},
): Promise<RunResult> {
  const proc = new ManagedProcess(name, argv, { ...options, keepStdout: true });
  const exited = await proc.waitForExit(timeoutMs);
  if (!exited) await proc.stop(1000);
  live.delete(proc);
  return { code: proc.exitCode, stdout: proc.stdout, stderr: proc.stderrTail(40), timedOut: !exited };
}

/**
 * Makes sure every spawned process dies with the harness: on normal exit, on
 * Ctrl-C / SIGTERM, and on an uncaught error. onExit (temp dir removal) runs
 * after the processes are killed, and must be synchronous.
 */
export function installCleanupHandlers(onExit: () => void): void {
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    killAllSync();
    killLeftovers();
    onExit();
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping all processes\n`);
      cleanup();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    cleanup();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    cleanup();
    process.exit(1);
  });
}
