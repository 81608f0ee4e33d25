/**
 * nginx's `pid` file: where `fulcrum -s reload` (nginx's `nginx -s reload`,
 * which the seed's compose file runs every 6 hours) finds the process to
 * signal. Like nginx, fulcrum writes one even when the configuration does
 * not name it: nginx's compiled-in default is /run/nginx.pid on Debian;
 * fulcrum's is /run/fulcrum.pid for root, and a per-user file in the
 * temporary directory for anyone else (who cannot write /run).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { log } from '../log/error-log.js';

export function defaultPidFile(): string {
  const uid = process.getuid?.();
  return uid === 0 ? '/run/fulcrum.pid' : path.join(os.tmpdir(), `fulcrum-${uid ?? 'user'}.pid`);
}

/** The configured `pid` (relative to the configuration's directory, as its other paths), or the default. */
export function pidFileOf(loaded: LoadedConfig): string {
  const configured = loaded.config.pid;
  return configured === undefined ? defaultPidFile() : path.resolve(loaded.baseDir, configured);
}

/** Written once serving; removed at exit unless a newer process (binary upgrade) replaced it. */
export function writePidFile(file: string): void {
  try {
    fs.writeFileSync(file, `${process.pid}\n`);
  } catch (err) {
    log().error({ file, error: (err as Error).message }, 'cannot write the pid file');
  }
}

/** A reload that names another pid file: written there, removed from the old place (as nginx does). */
export function movePidFile(from: string | undefined, to: string): string {
  if (from === to) return to;
  writePidFile(to);
  removePidFile(from);
  return to;
}

export function removePidFile(file: string | undefined): void {
  if (file === undefined) return;
  try {
    if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
  } catch {
    // gone already
  }
}

/** nginx's `-s` signals and what fulcrum does with each (nginx's meaning: stop is fast, quit graceful). */
export const CONTROL_SIGNALS = {
  stop: 'SIGTERM',
  quit: 'SIGQUIT',
  reload: 'SIGHUP',
  reopen: 'SIGUSR1',
} as const satisfies Record<string, NodeJS.Signals>;

export type ControlSignal = keyof typeof CONTROL_SIGNALS;

/**
 * Sends `signal` to the fulcrum whose pid is in `file`. Throws with a message
 * for the user when there is no such file, the number is not a live process,
 * or the process is not a fulcrum (a stale file whose pid was reused).
 */
export function signalPidFile(file: string, signal: ControlSignal): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`open() "${file}" failed (${e.code === 'ENOENT' ? 'No such file or directory' : e.message}): is fulcrum running with this configuration?`);
  }
  const pid = /^\s*(\d+)\s*$/.exec(text)?.[1];
  if (pid === undefined || Number(pid) <= 1) throw new Error(`invalid PID number "${text.trim()}" in "${file}"`);
  const n = Number(pid);
  const cmdline = readCmdline(n);
  if (cmdline !== undefined && cmdline !== '' && !/fulcrum|worker-main|\bnode\b/.test(cmdline)) {
    throw new Error(`process ${n} from "${file}" is not fulcrum (${cmdline.slice(0, 80)}): a stale pid file?`);
  }
  try {
    process.kill(n, CONTROL_SIGNALS[signal]);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`kill(${n}, ${CONTROL_SIGNALS[signal]}) failed (${e.code === 'ESRCH' ? 'No such process' : e.message}): a stale pid file "${file}"?`);
  }
  return n;
}

/** The process's command line (Linux), or undefined where /proc does not say. */
function readCmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return undefined;
  }
}
