/**
 * Access log: nginx's `combined` format by default, any log_format, or JSON.
 * Lines are formatted when a request ends and written in batches (one write
 * per 64 KiB or per 100 ms), so logging does not add a syscall per request.
 */
import * as fs from 'node:fs';
import { variableGetter, type Getter, type VariableScope } from '../variables/template.js';
import type { VariableContext } from '../variables/context.js';

export const COMBINED_FORMAT = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

/** Fields of the built-in "json" format. */
const JSON_FIELDS: [string, string][] = [
  ['time', 'time_iso8601'],
  ['remote_addr', 'remote_addr'],
  ['request_id', 'request_id'],
  ['method', 'request_method'],
  ['uri', 'request_uri'],
  ['protocol', 'server_protocol'],
  ['host', 'host'],
  ['status', 'status'],
  ['body_bytes_sent', 'body_bytes_sent'],
  ['request_time', 'request_time'],
  ['upstream_addr', 'upstream_addr'],
  ['upstream_status', 'upstream_status'],
  ['upstream_response_time', 'upstream_response_time'],
  ['referer', 'http_referer'],
  ['user_agent', 'http_user_agent'],
];

export type Escape = 'default' | 'json' | 'none';
export type LineFormatter = (ctx: VariableContext) => string;

/** nginx's default escaping: ", \ and bytes outside printable ASCII become \xHH. */
function escapeDefault(s: string): string {
  return /["\\\x00-\x1f\x7f-\xff]/.test(s) ? s.replace(/["\\\x00-\x1f\x7f-\xff]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')) : s;
}

function escapeJson(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/** Compiles a log_format into a formatter; throws on unknown variables. */
export function compileLogFormat(format: string, escape: Escape, scope?: VariableScope): LineFormatter {
  const esc = escape === 'json' ? escapeJson : escape === 'none' ? (s: string) => s : escapeDefault;
  const parts: (string | Getter)[] = [];
  const re = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;
  let last = 0;
  for (const m of format.matchAll(re)) {
    const name = (m[1] ?? m[2])!;
    const getter = scope?.get(name) ?? variableGetter(name);
    if (getter === undefined) throw new Error(`unknown "${name}" variable`);
    if (m.index! > last) parts.push(format.slice(last, m.index));
    // nginx logs "-" for an empty variable in the default escaping.
    parts.push((ctx) => {
      const v = getter(ctx);
      return v === '' && escape === 'default' ? '-' : esc(v);
    });
    last = m.index! + m[0].length;
  }
  if (last < format.length) parts.push(format.slice(last));
  return (ctx) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(ctx);
    return out;
  };
}

export function jsonFormatter(): LineFormatter {
  const getters = JSON_FIELDS.map(([key, name]) => [key, variableGetter(name)!] as const);
  return (ctx) => {
    const obj: Record<string, string | number> = {};
    for (const [key, get] of getters) {
      const v = get(ctx);
      obj[key] = key === 'status' || key === 'body_bytes_sent' ? Number(v) : v;
    }
    return JSON.stringify(obj);
  };
}

const STANDARD_STREAMS = new Map([
  ['stdout', 1],
  ['/dev/stdout', 1],
  ['stderr', 2],
  ['/dev/stderr', 2],
]);

const FLUSH_BYTES = 65536;
const FLUSH_INTERVAL_MS = 100;

/** A batched append-only writer for one log destination; shared by all formats writing there. */
export class LogSink {
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;
  private fd: number;
  private readonly ownsFd: boolean;

  constructor(readonly path: string) {
    this.ownsFd = !STANDARD_STREAMS.has(path);
    this.fd = this.open();
  }

  private open(): number {
    const std = STANDARD_STREAMS.get(this.path);
    return std ?? fs.openSync(this.path, 'a', 0o644);
  }

  /** Reopens the file (after log rotation: nginx's USR1). */
  reopen(): void {
    this.flush();
    if (!this.ownsFd) return;
    fs.closeSync(this.fd);
    this.fd = this.open();
  }

  write(line: string): void {
    this.buffer += line + '\n';
    if (this.buffer.length >= FLUSH_BYTES) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.buffer === '') return;
    const data = this.buffer;
    this.buffer = '';
    try {
      fs.writeSync(this.fd, data);
    } catch {
      // A log that cannot be written must never take the proxy down.
    }
  }

  close(): void {
    this.flush();
    if (this.ownsFd) fs.closeSync(this.fd);
  }
}

/** Log sinks by path, shared across config generations so reloads keep appending to the same files. */
export class LogSinks {
  private readonly sinks = new Map<string, LogSink>();

  get(path: string): LogSink {
    let sink = this.sinks.get(path);
    if (sink === undefined) {
      sink = new LogSink(path);
      this.sinks.set(path, sink);
    }
    return sink;
  }

  flushAll(): void {
    for (const s of this.sinks.values()) s.flush();
  }

  /** Reopens files (after log rotation: nginx's USR1). */
  reopen(): void {
    for (const sink of this.sinks.values()) sink.reopen();
  }
}

export interface AccessLogTarget {
  sink: LogSink;
  format: LineFormatter;
}
