/**
 * Running wrk and parsing its `--latency` report.
 *
 * wrk prints durations with a unit suffix (us, ms, s, m, h) and sizes with
 * binary prefixes (KB = 1024 bytes); both are normalised here to
 * microseconds and bytes.
 */
import { runBounded } from './processes.js';

export interface WrkLoad {
  port: number;
  path: string;
  threads: number;
  connections: number;
  durationSec: number;
  headers?: readonly string[];
  /** https:// (TLS) instead of http://. */
  tls?: boolean;
}

export interface WrkResult {
  requests: number;
  durationSec: number;
  reqPerSec: number;
  bytesRead: number;
  transferBytesPerSec: number;
  latencyUs: { avg: number; max: number; p50: number; p75: number; p90: number; p99: number };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** wrk's "Non-2xx or 3xx responses" (it counts status >= 400). */
  badStatus: number;
}

/** Per-request timeout: a request slower than this counts as a timeout error. */
const REQUEST_TIMEOUT_SEC = 5;

function wrkArgv(load: WrkLoad, withLatency: boolean): string[] {
  const argv = [
    'wrk',
    `-t${load.threads}`,
    `-c${load.connections}`,
    `-d${load.durationSec}s`,
    '--timeout',
    `${REQUEST_TIMEOUT_SEC}s`,
  ];
  if (withLatency) argv.push('--latency');
  for (const h of load.headers ?? []) argv.push('-H', h);
  argv.push(`${load.tls ? 'https' : 'http'}://127.0.0.1:${load.port}${load.path}`);
  return argv;
}

/**
 * Runs wrk pinned to the load-generator core. Bounded: wrk's own -d plus a
 * margin for connection setup and the final report, then it is killed.
 */
export async function runWrk(load: WrkLoad, cpus: string | undefined, withLatency = true): Promise<WrkResult> {
  const timeoutMs = (load.durationSec + REQUEST_TIMEOUT_SEC + 10) * 1000;
  const r = await runBounded('wrk', wrkArgv(load, withLatency), timeoutMs, { cpus });
  if (r.timedOut) throw new Error(`wrk did not finish within ${timeoutMs} ms`);
  if (r.code !== 0) throw new Error(`wrk failed (exit code ${r.code}): ${r.stderr || r.stdout}`);
  return parseWrkOutput(r.stdout);
}

const TIME_UNITS_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function parseTimeUs(text: string): number {
  const m = text.match(/^([\d.]+)(us|ms|s|m|h)$/);
  if (!m) throw new Error(`unparseable wrk duration "${text}"`);
  return Number(m[1]) * TIME_UNITS_US[m[2]!]!;
}

function parseBytes(text: string): number {
  const m = text.match(/^([\d.]+)(B|KB|MB|GB|TB)$/);
  if (!m) throw new Error(`unparseable wrk size "${text}"`);
  return Number(m[1]) * SIZE_UNITS[m[2]!]!;
}

function required(text: string, re: RegExp, what: string): RegExpMatchArray {
  const m = text.match(re);
  if (!m) throw new Error(`wrk output has no ${what}:\n${text}`);
  return m;
}

export function parseWrkOutput(text: string): WrkResult {
  const total = required(text, /^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read/m, 'request total');
  const rps = required(text, /^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec');
  const transfer = required(text, /^Transfer\/sec:\s+([\d.]+\w+)/m, 'Transfer/sec');
  const latency = required(text, /^[ \t]*Latency[ \t]+(\S+)[ \t]+\S+[ \t]+(\S+)/m, 'latency line');
  const pct = (p: number) => {
    const m = text.match(new RegExp(`^[ \\t]*${p}%[ \\t]+(\\S+)`, 'm'));
    return m ? parseTimeUs(m[1]!) : NaN;
  };
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const bad = text.match(/Non-2xx or 3xx responses: (\d+)/);
  return {
    requests: Number(total[1]),
    durationSec: parseTimeUs(total[2]!) / 1e6,
    reqPerSec: Number(rps[1]),
    bytesRead: parseBytes(total[3]!),
    transferBytesPerSec: parseBytes(transfer[1]!),
    latencyUs: {
      avg: parseTimeUs(latency[1]!),
      max: parseTimeUs(latency[2]!),
      p50: pct(50),
      p75: pct(75),
      p90: pct(90),
      p99: pct(99),
    },
    socketErrors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
    },
    badStatus: Number(bad?.[1] ?? 0),
  };
}

/** A short description of any errors in a wrk result, or '' when clean. */
export function wrkErrorSummary(r: WrkResult): string {
  const parts: string[] = [];
  for (const [kind, n] of Object.entries(r.socketErrors)) if (n > 0) parts.push(`${n} ${kind}`);
  if (r.badStatus > 0) parts.push(`${r.badStatus} non-2xx`);
  return parts.join(', ');
}
