/**
 * fulcrum's event log (nginx's error_log): structured JSON lines through
 * pino, to stderr by default. One object per line with `level` as a word,
 * `time`, `msg` and fields; lifecycle messages tests and operators can wait
 * for are stable: "ready", "reloaded", "reload failed", "stopping", "stopped".
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const NGINX_TO_PINO: Record<string, string> = {
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warn: 'warn',
  error: 'error',
  crit: 'fatal',
  alert: 'fatal',
  emerg: 'fatal',
};

let current: Logger = makeLogger('stderr', 'info');

function makeLogger(path: string, level: string): Logger {
  const dest =
    path === 'stderr' || path === '/dev/stderr'
      ? pino.destination({ dest: 2, sync: true })
      : path === 'stdout' || path === '/dev/stdout'
        ? pino.destination({ dest: 1, sync: true })
        : pino.destination({ dest: path, sync: true, mkdir: true });
  return pino(
    {
      level: NGINX_TO_PINO[level] ?? 'info',
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    dest,
  );
}

/** The process-wide logger. */
export function log(): Logger {
  return current;
}

/** Re-targets the log (config load/reload). Returns the new logger. */
export function configureErrorLog(path: string, level: string): Logger {
  current = makeLogger(path, level);
  return current;
}
