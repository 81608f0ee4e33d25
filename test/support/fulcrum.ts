/**
 * Runs the real fulcrum CLI (`bin/fulcrum.js`) for integration tests.
 *
 * fulcrum logs JSON lines to stderr, one object per line
 * (`{"level":"info","time":...,"msg":"ready",...}`); `startFulcrum` parses
 * them into `logs` (other lines are kept as `{ text }`) and resolves once
 * `msg === "ready"` appears.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { killWithParent } from '../../src/demo/replicas.js';
import { tempDir } from './tmp.js';

/** This file runs from dist/test/support/; the repository root is three levels up. */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FULCRUM_BIN = join(REPO_ROOT, 'bin', 'fulcrum.js');
const READY_TIMEOUT_MS = 10_000;
const RELOAD_TIMEOUT_MS = 10_000;

/** One stderr line: a parsed JSON object, or `{ text }` for anything else. */
export interface LogEntry {
  level?: string;
  time?: number | string;
  msg?: string;
  /** Set for lines that were not a JSON object. */
  text?: string;
  [field: string]: unknown;
}

export interface StartFulcrumOptions {
  /** Configuration file text. */
  config: string;
  /** Picks the default file name; default nginx. */
  format?: 'nginx' | 'yaml';
  /** Default `fulcrum.conf` (nginx) or `fulcrum.yaml`. */
  fileName?: string;
  /** Where to write the config (and the working directory); default a fresh temp dir, so relative paths in the config resolve beside it. */
  dir?: string;
  /** Extra CLI arguments after `start --config FILE`. */
  args?: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Only 'ready' exists: resolve once fulcrum logs msg "ready". */
  waitFor?: 'ready';
  /** Default 10 s. */
  readyTimeoutMs?: number;
}

type LogPredicate = (entry: LogEntry) => boolean;

interface LogWaiter {
  predicate: LogPredicate;
  fromIndex: number;
  resolve(entry: LogEntry): void;
  reject(err: Error): void;
}

export class FulcrumProcess {
  readonly logs: LogEntry[] = [];
  /** stdout lines (fulcrum itself logs to stderr). */
  readonly stdout: string[] = [];
  private waiters: LogWaiter[] = [];
  private exitResult: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcess, readonly configPath: string, readonly dir: string) {
    killWithParent(child);
    createInterface({ input: child.stderr! }).on('line', (line) => this.addLog(parseLogLine(line)));
    createInterface({ input: child.stdout! }).on('line', (line) => this.stdout.push(line));
    this.exited = new Promise((resolve) => {
      // 'close' rather than 'exit': the last stderr lines (often the reason for an exit) are parsed by then.
      child.once('close', (code, signal) => {
        this.exitResult = { code, signal };
        this.failWaiters(new Error(`fulcrum exited (code ${code}, signal ${signal})\n${this.stderrText()}`));
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Exit code and signal once the process has exited. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitResult;
  }

  /** Every stderr line, as text, for failure messages. */
  stderrText(): string {
    return this.logs.map((entry) => entry.text ?? JSON.stringify(entry)).join('\n');
  }

  /**
   * Resolves with the first log entry (at index `fromIndex` or later; default:
   * any, including ones already logged) that matches; rejects after
   * `timeoutMs` or when the process exits first.
   */
  waitForLog(predicate: LogPredicate, timeoutMs = 5000, fromIndex = 0): Promise<LogEntry> {
    const found = this.logs.slice(fromIndex).find(predicate);
    if (found) return Promise.resolve(found);
    if (this.exitResult) return Promise.reject(new Error(`fulcrum has exited\n${this.stderrText()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching fulcrum log within ${timeoutMs} ms\n${this.stderrText()}`));
      }, timeoutMs);
      const waiter: LogWaiter = {
        predicate,
        fromIndex,
        resolve: (entry) => { clearTimeout(timer); resolve(entry); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Rewrites the config file (when text is given), sends SIGHUP and resolves
   * on the next `reloaded` log; rejects with the error of a `reload failed` log.
   */
  async reload(newConfigText?: string): Promise<LogEntry> {
    if (newConfigText !== undefined) writeFileSync(this.configPath, newConfigText);
    const from = this.logs.length;
    this.child.kill('SIGHUP');
    const entry = await this.waitForLog((e) => e.msg === 'reloaded' || e.msg === 'reload failed', RELOAD_TIMEOUT_MS, from);
    if (entry.msg === 'reload failed') throw new Error(`reload failed: ${errorText(entry)}`);
    return entry;
  }

  /** Sends `signal` and resolves with the exit code (null if a signal ended it); SIGKILLs and rejects after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (this.exitResult) return this.exitResult.code;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
    const outcome = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      await this.kill();
      throw new Error(`fulcrum did not exit within ${timeoutMs} ms of ${signal}\n${this.stderrText()}`);
    }
    return outcome;
  }

  /** Resolves with the exit code once the process exits by itself (or something else stopped it); rejects after `timeoutMs`. */
  async waitForExit(timeoutMs = 10_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`fulcrum did not exit within ${timeoutMs} ms\n${this.stderrText()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    if (!this.exitResult) this.child.kill('SIGKILL');
    await this.exited;
  }

  private addLog(entry: LogEntry): void {
    const index = this.logs.push(entry) - 1;
    for (const waiter of [...this.waiters]) {
      if (index >= waiter.fromIndex && waiter.predicate(entry)) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(entry);
      }
    }
  }

  private failWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(err);
  }
}

function parseLogLine(line: string): LogEntry {
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as LogEntry;
  } catch {
    // not JSON: kept as text below
  }
  return { text: line };
}

function errorText(entry: LogEntry): string {
  for (const field of ['error', 'err', 'message', 'reason']) {
    const value = entry[field];
    if (typeof value === 'string') return value;
    if (value !== undefined) return JSON.stringify(value);
  }
  return JSON.stringify(entry);
}

function defaultFileName(format: StartFulcrumOptions['format']): string {
  return format === 'yaml' ? 'fulcrum.yaml' : 'fulcrum.conf';
}

/**
 * Writes the config, starts `fulcrum start --config FILE` and resolves once it
 * logs "ready". Rejects with everything it logged if it exits first or is not
 * ready within 10 s (the process is killed then). Always `stop()` it.
 */
export async function startFulcrum(opts: StartFulcrumOptions): Promise<FulcrumProcess> {
  const dir = opts.dir ?? tempDir('fulcrum-run-');
  const configPath = join(dir, opts.fileName ?? defaultFileName(opts.format));
  writeFileSync(configPath, opts.config);
  const child = spawn(process.execPath, [FULCRUM_BIN, 'start', '--config', configPath, ...(opts.args ?? [])], {
    cwd: dir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const fulcrum = new FulcrumProcess(child, configPath, dir);
  try {
    await fulcrum.waitForLog((e) => e.msg === 'ready', opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
  } catch (err) {
    await fulcrum.kill();
    throw err;
  }
  return fulcrum;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `fulcrum ...args` to completion, e.g. `runFulcrum(['check', '--config', path])`. Killed after `timeoutMs` (default 10 s). */
export function runFulcrum(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [FULCRUM_BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killWithParent(child);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    // 'close' (not 'exit') waits until both pipes are drained.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() });
    });
  });
}
