/**
 * nginx front end, second half: turns the directive tree from parse.ts into
 * fulcrum's configuration model (plain data that schema.ts validates).
 *
 * Every directive fulcrum accepts is declared once in DIRECTIVES with the
 * contexts it may appear in, its argument count and how it lands in the
 * model. A directive that is not there is an error naming it, its file and
 * line; nothing is silently ignored. A few nginx directives that have no
 * meaning for fulcrum (user, daemon, sendfile...) are accepted with a warning
 * that says so (see IGNORED).
 */
import type { ConfigDiagnostic, SourceLocation } from '../errors.js';
import { PathSourceMap, type ModelPath } from '../source-map.js';
import { parseDuration, parseSize } from '../units.js';
import type { Directive } from './parse.js';
import { parseExpires } from './header-directives.js';

type Context = 'main' | 'events' | 'http' | 'server' | 'location' | 'upstream' | 'admin' | 'if';
type Obj = Record<string, unknown>;

interface Frame {
  context: Context;
  /** The model object directives of this block write into. */
  target: Obj;
  /** Model path of `target`. */
  path: ModelPath;
}

interface DirectiveSpec {
  contexts: readonly Context[];
  /** Allowed argument counts: [min, max]; max Infinity for lists. */
  args: readonly [number, number];
  /** true: requires a block; 'optional': decides itself (http `server` has one, upstream `server` has none). */
  block?: boolean | 'optional';
  apply(d: Directive, frame: Frame, t: Translator): void;
}

/**
 * Directives nginx has that change nothing in fulcrum; accepted with a
 * warning, except with the argument that asks for what fulcrum does anyway
 * (`daemon off`, as in the seed's `nginx -g "daemon off;"`).
 */
const IGNORED: Record<string, { contexts: readonly Context[]; why: string; agrees?: string }> = {
  user: { contexts: ['main'], why: 'fulcrum runs as the user that starts it' },
  daemon: { contexts: ['main'], why: 'fulcrum always runs in the foreground (use a service manager)', agrees: 'off' },
  master_process: { contexts: ['main'], why: 'fulcrum always has one supervisor process', agrees: 'on' },
  worker_rlimit_nofile: { contexts: ['main'], why: 'set the file limit with ulimit or the service manager' },
  worker_cpu_affinity: { contexts: ['main'], why: 'use taskset or the service manager to pin CPUs' },
  pcre_jit: { contexts: ['main'], why: 'fulcrum uses JavaScript regular expressions' },
  multi_accept: { contexts: ['events'], why: 'the event loop accepts as connections arrive' },
  accept_mutex: { contexts: ['events'], why: 'workers share listening sockets through the kernel' },
  use: { contexts: ['events'], why: 'the event method is chosen by libuv' },
  sendfile: { contexts: ['http', 'server', 'location'], why: 'static files are streamed by Node' },
  tcp_nopush: { contexts: ['http', 'server', 'location'], why: 'writes are already coalesced' },
  tcp_nodelay: { contexts: ['http', 'server', 'location'], why: 'fulcrum always sets TCP_NODELAY' },
  types_hash_max_size: { contexts: ['http', 'server', 'location'], why: 'no hash tables to size' },
  server_names_hash_bucket_size: { contexts: ['http'], why: 'no hash tables to size' },
  server_names_hash_max_size: { contexts: ['http'], why: 'no hash tables to size' },
  variables_hash_max_size: { contexts: ['http'], why: 'no hash tables to size' },
  proxy_buffer_size: { contexts: ['http', 'server', 'location'], why: 'fulcrum streams without fixed proxy buffers' },
  proxy_buffers: { contexts: ['http', 'server', 'location'], why: 'fulcrum streams without fixed proxy buffers' },
  proxy_busy_buffers_size: { contexts: ['http', 'server', 'location'], why: 'fulcrum streams without fixed proxy buffers' },
  zone: { contexts: ['upstream'], why: 'fulcrum shares upstream state between workers by default' },
  gzip_buffers: { contexts: ['http', 'server', 'location'], why: 'fulcrum compresses each piece of the body as it passes, without fixed buffers' },
  reset_timedout_connection: { contexts: ['http', 'server', 'location'], why: 'timed-out connections are always reset' },
  client_body_temp_path: { contexts: ['http', 'server', 'location'], why: 'fulcrum streams request bodies; nothing is written to disk' },
  proxy_temp_path: { contexts: ['http', 'server', 'location'], why: 'fulcrum streams proxied responses; nothing is written to disk' },
  fastcgi_temp_path: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no FastCGI and writes nothing to disk' },
  uwsgi_temp_path: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no uwsgi and writes nothing to disk' },
  scgi_temp_path: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no SCGI and writes nothing to disk' },
  proxy_max_temp_file_size: { contexts: ['http', 'server', 'location'], why: 'fulcrum never buffers responses to temporary files (as nginx with 0)', agrees: '0' },
  open_file_cache: { contexts: ['http', 'server', 'location'], why: 'static files are looked up on every request, so changes on disk show at once' },
  open_file_cache_valid: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no open file cache' },
  open_file_cache_min_uses: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no open file cache' },
  open_file_cache_errors: { contexts: ['http', 'server', 'location'], why: 'fulcrum has no open file cache' },
  sendfile_max_chunk: { contexts: ['http', 'server', 'location'], why: 'static files are streamed in bounded pieces by Node, without sendfile' },
  proxy_headers_hash_max_size: { contexts: ['http', 'server', 'location'], why: 'no hash tables to size' },
  proxy_headers_hash_bucket_size: { contexts: ['http', 'server', 'location'], why: 'no hash tables to size' },
  ssl_buffer_size: { contexts: ['http', 'server'], why: 'TLS record sizes are chosen by Node' },
  log_not_found: { contexts: ['http', 'server', 'location'], why: 'fulcrum never writes missing files to the error log (as log_not_found off); they are in the access log as 404', agrees: 'off' },
  keepalive_disable: { contexts: ['http', 'server', 'location'], why: 'fulcrum keeps connections alive for every browser (as keepalive_disable none)', agrees: 'none' },
  lingering_close: { contexts: ['http', 'server', 'location'], why: 'fulcrum always lingers as nginx\'s default "lingering_close on": see README, "Closing connections"', agrees: 'on' },
  lingering_time: { contexts: ['http', 'server', 'location'], why: 'a closing connection waits at most 5s for the client to close (README, "Closing connections")' },
  lingering_timeout: { contexts: ['http', 'server', 'location'], why: 'a closing connection waits at most 5s for the client to close (README, "Closing connections")' },
  proxy_socket_keepalive: { contexts: ['http', 'server', 'location'], why: 'fulcrum does not set SO_KEEPALIVE on upstream sockets (as nginx\'s default "off"); idle pooled connections are closed after keepalive_timeout', agrees: 'off' },
};

const RETURN_REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

export interface TranslateResult {
  model: Obj;
  sourceMap: PathSourceMap;
  diagnostics: ConfigDiagnostic[];
  warnings: ConfigDiagnostic[];
}

/** nginx's documented default for worker_processes. */
const NGINX_DEFAULT_WORKER_PROCESSES = 1;

export function translateNginx(directives: readonly Directive[]): TranslateResult {
  const root: Obj = {};
  const t = new Translator(root);
  t.block(directives, { context: 'main', target: root, path: [] });
  // nginx runs one worker unless told otherwise; an nginx config keeps that
  // meaning (fulcrum's own format defaults to one worker per CPU).
  if (root.worker_processes === undefined) root.worker_processes = NGINX_DEFAULT_WORKER_PROCESSES;
  return { model: root, sourceMap: t.sourceMap, diagnostics: t.diagnostics, warnings: t.warnings };
}

export class Translator {
  readonly sourceMap = new PathSourceMap();
  readonly diagnostics: ConfigDiagnostic[] = [];
  readonly warnings: ConfigDiagnostic[] = [];

  constructor(
    /** The model root, for main-level settings written from inner blocks (error_log). */
    readonly root: Obj,
  ) {}

  block(directives: readonly Directive[], frame: Frame): void {
    for (const d of directives) this.directive(d, frame);
  }

  error(d: Directive | SourceLocation, message: string, directive?: string): void {
    const loc = 'loc' in d ? d.loc : d;
    this.diagnostics.push({ loc, message, directive: directive ?? ('name' in d ? d.name : undefined) });
  }

  warn(d: Directive, message: string): void {
    this.warnings.push({ loc: d.loc, message, directive: d.name });
  }

  /** Records where a model key came from. */
  mark(path: ModelPath, d: Directive): void {
    this.sourceMap.set(path, d.loc, d.name);
  }

  private directive(d: Directive, frame: Frame): void {
    const spec = DIRECTIVES[d.name];
    if (spec === undefined) {
      const ignored = IGNORED[d.name];
      if (ignored !== undefined && ignored.contexts.includes(frame.context)) {
        if (d.block !== undefined) this.error(d, `directive "${d.name}" has no block`);
        else if (ignored.agrees !== undefined && d.args.length === 1 && d.args[0] === ignored.agrees) return;
        else this.warn(d, `directive "${d.name}" is accepted and ignored: ${ignored.why}`);
        return;
      }
      if (d.name === 'types' && frame.context !== 'main' && frame.context !== 'events') {
        this.warn(d, 'directive "types" is ignored: fulcrum has a built-in MIME type table');
        return;
      }
      this.error(d, `unknown directive "${d.name}"`);
      return;
    }
    if (!spec.contexts.includes(frame.context)) {
      if (frame.context === 'if') this.error(d, `"${d.name}" directive is not allowed inside "if" (fulcrum supports return, rewrite, set and break there)`);
      else this.error(d, `"${d.name}" directive is not allowed here (in ${frame.context} context)`);
      return;
    }
    if (spec.block === true && d.block === undefined) {
      this.error(d, `directive "${d.name}" has no opening "{"`);
      return;
    }
    if (spec.block === undefined && d.block !== undefined) {
      this.error(d, `directive "${d.name}" takes no block`);
      return;
    }
    const [min, max] = spec.args;
    if (d.args.length < min || d.args.length > max) {
      this.error(d, `invalid number of arguments in "${d.name}" directive`);
      return;
    }
    spec.apply(d, frame, this);
  }

  /** Sets a scalar key once per block, like nginx's "directive is duplicate" check. */
  setOnce(d: Directive, frame: Frame, key: string, value: unknown): void {
    if (value === undefined) return;
    if (Object.prototype.hasOwnProperty.call(frame.target, key)) {
      this.error(d, `"${d.name}" directive is duplicate`);
      return;
    }
    frame.target[key] = value;
    this.mark([...frame.path, key], d);
  }

  /** Appends to a list key; each element's path points at its directive. */
  push(d: Directive, frame: Frame, key: string, value: unknown): number {
    let list = frame.target[key] as unknown[] | undefined;
    if (list === undefined) {
      list = [];
      frame.target[key] = list;
      this.mark([...frame.path, key], d);
    }
    list.push(value);
    this.mark([...frame.path, key, list.length - 1], d);
    return list.length - 1;
  }

  child(frame: Frame, key: string, context: Context, d: Directive, target: Obj): Frame {
    const index = this.push(d, frame, key, target);
    return { context, target, path: [...frame.path, key, index] };
  }

}

// ---------------------------------------------------------------- argument helpers

function flag(d: Directive, t: Translator, arg: string): boolean | undefined {
  if (arg === 'on') return true;
  if (arg === 'off') return false;
  t.error(d, `invalid value "${arg}" in "${d.name}" directive, it must be "on" or "off"`);
  return undefined;
}

function time(d: Directive, t: Translator, arg: string): string | undefined {
  if (parseDuration(arg) === undefined) {
    t.error(d, `"${d.name}" directive invalid value "${arg}"`);
    return undefined;
  }
  return arg;
}

function size(d: Directive, t: Translator, arg: string): string | undefined {
  if (parseSize(arg) === undefined) {
    t.error(d, `"${d.name}" directive invalid value "${arg}"`);
    return undefined;
  }
  return arg;
}

function integer(d: Directive, t: Translator, arg: string, min = 0): number | undefined {
  if (!/^[0-9]+$/.test(arg) || +arg < min) {
    t.error(d, `invalid value "${arg}" in "${d.name}" directive`);
    return undefined;
  }
  return +arg;
}

/** A scalar inheritable setting: one argument parsed by `parse`. */
function scalar(contexts: readonly Context[], parse: (d: Directive, t: Translator, arg: string) => unknown, key?: string): DirectiveSpec {
  return {
    contexts,
    args: [1, 1],
    apply(d, frame, t) {
      t.setOnce(d, frame, key ?? d.name, parse(d, t, d.args[0]!));
    },
  };
}

const HSL: readonly Context[] = ['http', 'server', 'location'];
const HS: readonly Context[] = ['http', 'server'];

const text = (_d: Directive, _t: Translator, arg: string): string => arg;

// ---------------------------------------------------------------- listen / server / upstream parsing

export function parseListen(d: Directive, t: Translator): Obj | undefined {
  const spec = d.args[0]!;
  const listen: Obj = {};
  if (spec.startsWith('unix:')) {
    t.error(d, `unix sockets are not supported in "listen" ("${spec}")`);
    return undefined;
  }
  let address: string | undefined;
  let portText: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?$/.exec(spec);
  if (v6 !== null) {
    address = `[${v6[1]}]`;
    portText = v6[2] ?? '80';
  } else if (/^[0-9]+$/.test(spec)) {
    portText = spec;
  } else {
    const colon = spec.lastIndexOf(':');
    if (colon >= 0) {
      address = spec.slice(0, colon);
      portText = spec.slice(colon + 1);
    } else {
      address = spec;
      portText = '80';
    }
  }
  const port = /^[0-9]+$/.test(portText) ? +portText : NaN;
  if (!(port >= 1 && port <= 65535) && !(port === 0)) {
    t.error(d, `invalid port in "${spec}" of the "listen" directive`);
    return undefined;
  }
  if (address !== undefined) listen.address = address === '*' ? '*' : address;
  listen.port = port;
  for (const param of d.args.slice(1)) {
    if (param === 'ssl') listen.ssl = true;
    else if (param === 'http2') listen.http2 = true;
    else if (param === 'default_server' || param === 'default') listen.default_server = true;
    else if (param === 'reuseport' || param === 'deferred' || param === 'fastopen' || param.startsWith('so_keepalive=') || param === 'bind') {
      t.warn(d, `listen parameter "${param}" is accepted and ignored`);
    } else if (param.startsWith('backlog=')) listen.backlog = integer(d, t, param.slice(8), 1);
    else if (param.startsWith('ipv6only=')) listen.ipv6only = flag(d, t, param.slice(9));
    else {
      t.error(d, `invalid parameter "${param}"`);
      return undefined;
    }
  }
  return listen;
}

function parseUpstreamServer(d: Directive, t: Translator): Obj | undefined {
  const server: Obj = { address: d.args[0]! };
  for (const param of d.args.slice(1)) {
    const eq = param.indexOf('=');
    const name = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? undefined : param.slice(eq + 1);
    switch (name) {
      case 'weight':
      case 'max_fails':
      case 'max_conns':
        if (value === undefined) return void t.error(d, `invalid parameter "${param}"`);
        server[name] = integer(d, t, value, name === 'weight' ? 1 : 0);
        break;
      case 'fail_timeout':
      case 'slow_start':
        if (value === undefined) return void t.error(d, `invalid parameter "${param}"`);
        server[name] = time(d, t, value);
        break;
      case 'backup':
      case 'down':
      case 'resolve':
      case 'drain':
        if (value !== undefined) return void t.error(d, `invalid parameter "${param}"`);
        server[name] = true;
        break;
      case 'service':
        if (value === undefined || value === '') return void t.error(d, `invalid parameter "${param}"`);
        server.service = value;
        break;
      default:
        t.error(d, `invalid parameter "${param}"`);
        return undefined;
    }
  }
  return server;
}

function parseReturn(d: Directive, t: Translator): Obj | undefined {
  const [first, second] = d.args as [string, string | undefined];
  if (/^[0-9]+$/.test(first)) {
    const code = +first;
    if (code > 999) {
      t.error(d, `invalid return code "${first}"`);
      return undefined;
    }
    return second === undefined ? { code } : { code, text: second };
  }
  if (second !== undefined) {
    t.error(d, `invalid return code "${first}"`);
    return undefined;
  }
  // `return URL;` is a 302 redirect; nginx requires the URL to start with a scheme or $scheme.
  if (/^(https?:\/\/|\$scheme)/.test(first)) return { code: 302, text: first };
  t.error(d, `invalid return code "${first}"`);
  return undefined;
}

/** Adds a rewrite-module directive to its block's program, in order; one after the block's `return` can never run. */
function pushRewrite(d: Directive, frame: Frame, t: Translator, op: Obj): number | undefined {
  if (frame.context === 'if') return t.push(d, frame, 'ops', op);
  if (frame.target.return !== undefined) {
    t.warn(d, `unreachable "${d.name}": the "return" before it in this block ends the request`);
    return undefined;
  }
  return t.push(d, frame, 'rewrite', op);
}

const IF_OPERATORS = new Set(['=', '!=', '~', '~*', '!~', '!~*']);
const IF_FILE_TESTS = new Set(['-f', '!-f', '-d', '!-d', '-e', '!-e', '-x', '!-x']);

/** `if ($var)`, `if ($var = text)`, `if ($var ~* regex)`, `if (-f $path)`...: the parentheses are part of the first and last words. */
function parseIfCondition(d: Directive, t: Translator): Obj | undefined {
  const args = [...d.args];
  if (args[0] === '(') args.shift();
  else if (args[0]!.startsWith('(')) args[0] = args[0]!.slice(1);
  else return void t.error(d, `invalid condition "${d.args.join(' ')}": it must be in parentheses`);
  const last = args.length - 1;
  if (args[last] === ')') args.pop();
  else if (last >= 0 && args[last]!.endsWith(')')) args[last] = args[last]!.slice(0, -1);
  else return void t.error(d, `invalid condition "${d.args.join(' ')}": it must be in parentheses`);
  if (args.length === 1 && args[0]!.startsWith('$')) return { subject: args[0]! };
  if (args.length === 2 && IF_FILE_TESTS.has(args[0]!)) return { subject: args[1]!, operator: args[0]! };
  if (args.length === 3 && args[0]!.startsWith('$') && IF_OPERATORS.has(args[1]!)) return { subject: args[0]!, operator: args[1]!, operand: args[2]! };
  t.error(d, `invalid condition "${args.join(' ')}"`);
  return undefined;
}

function parseAccessLog(d: Directive, t: Translator): unknown {
  if (d.args[0] === 'off') {
    if (d.args.length > 1) t.error(d, 'invalid parameter after "off"');
    return 'off';
  }
  const entry: Obj = { path: d.args[0]! };
  if (d.args.length > 1) entry.format = d.args[1]!;
  for (const param of d.args.slice(2)) {
    if (/^(buffer|flush|gzip)(=|$)/.test(param)) t.warn(d, `access_log parameter "${param}" is accepted and ignored`);
    else {
      t.error(d, `invalid parameter "${param}"`);
      return undefined;
    }
  }
  return entry;
}

function parseHealthCheck(d: Directive, t: Translator): Obj | undefined {
  const hc: Obj = {};
  for (const param of d.args) {
    if (param === 'mandatory') {
      hc.mandatory = true;
      continue;
    }
    if (param === 'persistent') continue; // nginx Plus: keep the state across reloads, which fulcrum always does
    const eq = param.indexOf('=');
    if (eq < 0) {
      t.error(d, `invalid parameter "${param}"`);
      return undefined;
    }
    const name = param.slice(0, eq);
    const value = param.slice(eq + 1);
    switch (name) {
      case 'match':
        t.error(d, `"match" blocks are not supported: give the expected status and body in health_check itself (status=200-399 body=REGEX)`);
        return undefined;
      case 'type':
        if (value !== 'http' && value !== 'tcp') return void t.error(d, `invalid parameter "${param}"`);
        hc.type = value;
        break;
      case 'interval':
      case 'timeout':
      case 'jitter':
        hc[name] = time(d, t, value);
        break;
      case 'rise':
      case 'passes':
        hc.rise = integer(d, t, value, 1);
        break;
      case 'fall':
      case 'fails':
        hc.fall = integer(d, t, value, 1);
        break;
      case 'port':
        hc.port = integer(d, t, value, 1);
        break;
      case 'uri':
      case 'method':
      case 'body':
      case 'host':
        hc[name] = value;
        break;
      case 'status':
        hc.status = value.split(',');
        break;
      default:
        t.error(d, `invalid parameter "${param}"`);
        return undefined;
    }
  }
  return hc;
}

/** Sets the upstream balancing method once; nginx: "load balancing method redefined". */
function setBalance(d: Directive, frame: Frame, t: Translator, balance: Obj): void {
  if (frame.target.balance !== undefined) {
    t.error(d, 'load balancing method redefined');
    return;
  }
  frame.target.balance = balance;
  t.mark([...frame.path, 'balance'], d);
}

// ---------------------------------------------------------------- the directive table

const DIRECTIVES: Record<string, DirectiveSpec> = {
  // ---- main / events
  worker_processes: scalar(['main'], (d, t, a) => (a === 'auto' ? 'auto' : integer(d, t, a, 1))),
  worker_connections: scalar(['events'], (d, t, a) => integer(d, t, a, 1)),
  worker_shutdown_timeout: scalar(['main'], time),
  reload_stream_timeout: scalar(['main'], time),
  watch_config: scalar(['main'], flag),
  pid: scalar(['main'], text),
  error_log: {
    contexts: ['main', 'http', 'server', 'location'],
    args: [1, 2],
    apply(d, frame, t) {
      if (frame.context !== 'main') {
        t.warn(d, 'error_log below the main level applies to the whole process in fulcrum');
      }
      const level = d.args[1];
      if (level !== undefined && !['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg'].includes(level)) {
        t.error(d, `invalid log level "${level}"`);
        return;
      }
      const root = t.root;
      if (root.error_log !== undefined) return; // nginx allows several logs; fulcrum keeps the first
      root.error_log = level === undefined ? { path: d.args[0] } : { path: d.args[0], level };
      t.mark(['error_log'], d);
    },
  },
  events: {
    contexts: ['main'],
    args: [0, 0],
    block: true,
    apply(d, frame, t) {
      t.block(d.block!, { context: 'events', target: frame.target, path: frame.path });
    },
  },
  http: {
    contexts: ['main'],
    args: [0, 0],
    block: true,
    apply(d, frame, t) {
      if (frame.target.http !== undefined) return t.error(d, '"http" directive is duplicate');
      const http: Obj = {};
      frame.target.http = http;
      t.mark(['http'], d);
      t.block(d.block!, { context: 'http', target: http, path: ['http'] });
    },
  },
  admin: {
    contexts: ['main'],
    args: [0, 0],
    block: true,
    apply(d, frame, t) {
      const admin: Obj = {};
      t.setOnce(d, frame, 'admin', admin);
      t.block(d.block!, { context: 'admin', target: admin, path: ['admin'] });
    },
  },
  token: scalar(['admin'], text),

  // ---- http
  server: {
    contexts: ['http', 'upstream'],
    args: [0, Infinity],
    block: 'optional',
    apply(d, frame, t) {
      if (frame.context === 'upstream') {
        if (d.block !== undefined) return t.error(d, 'directive "server" takes no block in upstream');
        if (d.args.length < 1) return t.error(d, 'invalid number of arguments in "server" directive');
        const server = parseUpstreamServer(d, t);
        if (server !== undefined) t.push(d, frame, 'servers', server);
        return;
      }
      if (d.block === undefined) return t.error(d, 'directive "server" has no opening "{"');
      if (d.args.length > 0) return t.error(d, 'invalid number of arguments in "server" directive');
      const server: Obj = {};
      const child = t.child(frame, 'servers', 'server', d, server);
      t.block(d.block, child);
    },
  },
  upstream: {
    contexts: ['http'],
    args: [1, 1],
    block: true,
    apply(d, frame, t) {
      const upstream: Obj = { name: d.args[0]! };
      const child = t.child(frame, 'upstreams', 'upstream', d, upstream);
      t.mark([...child.path, 'name'], d);
      t.block(d.block!, child);
      if (upstream.servers === undefined && upstream.servers_file === undefined) t.error(d, `no servers are inside upstream "${d.args[0]}"`);
    },
  },
  log_format: {
    contexts: ['http'],
    args: [2, Infinity],
    apply(d, frame, t) {
      const name = d.args[0]!;
      let rest = d.args.slice(1);
      let escape: string | undefined;
      if (rest[0]!.startsWith('escape=')) {
        escape = rest[0]!.slice(7);
        if (!['default', 'json', 'none'].includes(escape)) return t.error(d, `unknown log format escaping "${escape}"`);
        rest = rest.slice(1);
      }
      if (rest.length === 0) return t.error(d, 'invalid number of arguments in "log_format" directive');
      const formats = (frame.target.log_format ??= {}) as Obj;
      if (formats[name] !== undefined || name === 'combined') return t.error(d, `duplicate "log_format" name "${name}"`);
      formats[name] = escape === undefined ? { format: rest.join('') } : { format: rest.join(''), escape };
      t.mark(['http', 'log_format', name], d);
    },
  },
  resolver: {
    contexts: ['http'],
    args: [1, Infinity],
    apply(d, frame, t) {
      const addresses: string[] = [];
      for (const a of d.args) {
        if (a.startsWith('valid=')) t.setOnce(d, frame, 'resolver_valid', time(d, t, a.slice(6)));
        else if (a.startsWith('ipv6=') || a.startsWith('status_zone=')) t.warn(d, `resolver parameter "${a}" is accepted and ignored`);
        else addresses.push(a);
      }
      t.setOnce(d, frame, 'resolver', addresses);
    },
  },
  resolver_timeout: scalar(['http'], time),

  // ---- server
  listen: {
    contexts: ['server', 'admin'],
    args: [1, Infinity],
    apply(d, frame, t) {
      if (frame.context === 'admin') {
        // admin { listen 127.0.0.1:9090; }: one address, no parameters.
        if (d.args.length !== 1) return t.error(d, 'invalid number of arguments in "listen" directive');
        return t.setOnce(d, frame, 'listen', d.args[0]!);
      }
      const listen = parseListen(d, t);
      if (listen !== undefined) t.push(d, frame, 'listen', listen);
    },
  },
  server_name: {
    contexts: ['server'],
    args: [1, Infinity],
    apply(d, frame, t) {
      for (const name of d.args) t.push(d, frame, 'server_name', name.toLowerCase());
    },
  },
  location: {
    contexts: ['server', 'location'],
    args: [1, 2],
    block: true,
    apply(d, frame, t) {
      const match = d.args.length === 2 ? `${d.args[0]} ${d.args[1]}` : d.args[0]!;
      if (d.args.length === 2 && !['=', '~', '~*', '^~'].includes(d.args[0]!)) {
        return t.error(d, `invalid location modifier "${d.args[0]}"`);
      }
      if (d.args[0]!.startsWith('@') && (d.args.length !== 1 || frame.context !== 'server')) {
        return t.error(d, d.args.length !== 1 ? `invalid location modifier "${d.args[0]}"` : `named location "${d.args[0]}" can be on the server level only`);
      }
      const location: Obj = { location: match };
      const child = t.child(frame, 'locations', 'location', d, location);
      t.mark([...child.path, 'location'], d);
      t.block(d.block!, child);
    },
  },
  return: {
    contexts: ['server', 'location', 'if'],
    args: [1, 2],
    apply(d, frame, t) {
      const r = parseReturn(d, t);
      if (r === undefined) return;
      if (frame.context === 'if') return void t.push(d, frame, 'ops', { op: 'return', ...r });
      // After rewrite-module directives, the return runs in its place among them (they may change what it sends).
      if (frame.target.rewrite !== undefined && frame.target.return === undefined) t.push(d, frame, 'rewrite', { op: 'return', ...r });
      // nginx stops at the first `return` of a block; later ones are unreachable.
      if (frame.target.return !== undefined) return t.warn(d, 'unreachable "return": an earlier one in this block wins');
      if (RETURN_REDIRECT_CODES.has(r.code as number) && r.text === undefined) t.warn(d, `return ${r.code} without a URL sends an empty Location`);
      frame.target.return = r;
      t.mark([...frame.path, 'return'], d);
    },
  },
  rewrite: {
    contexts: ['server', 'location', 'if'],
    args: [2, 3],
    apply(d, frame, t) {
      const [regex, replacement, flagArg] = d.args as [string, string, string | undefined];
      if (flagArg !== undefined && !['last', 'break', 'redirect', 'permanent'].includes(flagArg)) return t.error(d, `invalid parameter "${flagArg}"`);
      pushRewrite(d, frame, t, flagArg === undefined ? { op: 'rewrite', regex, replacement } : { op: 'rewrite', regex, replacement, flag: flagArg });
    },
  },
  set: {
    contexts: ['server', 'location', 'if'],
    args: [2, 2],
    apply(d, frame, t) {
      const name = d.args[0]!;
      if (!/^\$[A-Za-z0-9_]+$/.test(name)) return t.error(d, `invalid variable name "${name}"`);
      pushRewrite(d, frame, t, { op: 'set', variable: name.slice(1), value: d.args[1]! });
    },
  },
  break: {
    contexts: ['server', 'location', 'if'],
    args: [0, 0],
    apply(d, frame, t) {
      pushRewrite(d, frame, t, { op: 'break' });
    },
  },
  if: {
    contexts: ['server', 'location'],
    args: [1, Infinity],
    block: true,
    apply(d, frame, t) {
      const condition = parseIfCondition(d, t);
      if (condition === undefined) return;
      const op: Obj = { op: 'if', condition };
      const index = pushRewrite(d, frame, t, op);
      if (index === undefined) return;
      t.block(d.block!, { context: 'if', target: op, path: [...frame.path, 'rewrite', index] });
      op.ops ??= [];
    },
  },
  http2: scalar(['server'], flag),
  http2_max_concurrent_streams: scalar(HS, (d, t, a) => integer(d, t, a, 1)),
  http2_idle_timeout: {
    contexts: HS,
    args: [1, 1],
    apply(d, _frame, t) {
      // Removed in nginx 1.19.7, which uses keepalive_timeout instead; fulcrum does too.
      if (time(d, t, d.args[0]!) !== undefined) t.warn(d, 'directive "http2_idle_timeout" is obsolete (nginx 1.19.7) and ignored: idle HTTP/2 connections close after keepalive_timeout');
    },
  },
  http2_recv_timeout: {
    contexts: HS,
    args: [1, 1],
    apply(d, _frame, t) {
      // Removed in nginx 1.19.7, which uses client_header_timeout instead.
      if (time(d, t, d.args[0]!) !== undefined) t.warn(d, 'directive "http2_recv_timeout" is obsolete (nginx 1.19.7) and ignored: node:http2 reads frames as they come');
    },
  },
  redirect_https: scalar(['server'], flag),
  hsts: scalar(['server'], time),

  // ---- location
  proxy_pass: scalar(['location'], text),
  stub_status: {
    contexts: ['location'],
    args: [0, 1],
    apply(d, frame, t) {
      // nginx ignores the argument of the old `stub_status on;` form: even "off" turns it on.
      if (d.args.length === 1 && d.args[0] !== 'on') t.warn(d, `the argument "${d.args[0]}" is ignored, as nginx does: the location answers with stub_status`);
      t.setOnce(d, frame, 'stub_status', true);
    },
  },
  internal: {
    contexts: ['location'],
    args: [0, 0],
    apply(d, frame, t) {
      t.setOnce(d, frame, 'internal', true);
    },
  },
  alias: scalar(['location'], text),
  try_files: {
    contexts: ['location'],
    args: [2, Infinity],
    apply(d, frame, t) {
      const last = d.args[d.args.length - 1]!;
      if (last.startsWith('=') && !/^=\d{3}$/.test(last)) return t.error(d, `invalid code "${last}"`);
      t.setOnce(d, frame, 'try_files', [...d.args]);
    },
  },

  // ---- upstream
  keepalive: scalar(['upstream'], (d, t, a) => integer(d, t, a, 0)),
  keepalive_time: scalar(['upstream'], time),
  servers_file: scalar(['upstream'], text),
  least_conn: {
    contexts: ['upstream'],
    args: [0, 0],
    apply(d, frame, t) {
      setBalance(d, frame, t, { method: 'least_conn' });
    },
  },
  ip_hash: {
    contexts: ['upstream'],
    args: [0, 0],
    apply(d, frame, t) {
      setBalance(d, frame, t, { method: 'ip_hash' });
    },
  },
  hash: {
    contexts: ['upstream'],
    args: [1, 2],
    apply(d, frame, t) {
      if (d.args.length === 2 && d.args[1] !== 'consistent') return t.error(d, `invalid parameter "${d.args[1]}"`);
      setBalance(d, frame, t, { method: 'hash', key: d.args[0]!, consistent: d.args.length === 2 });
    },
  },
  random: {
    contexts: ['upstream'],
    args: [0, 2],
    apply(d, frame, t) {
      if (d.args.length === 0) return setBalance(d, frame, t, { method: 'random' });
      if (d.args[0] !== 'two') return t.error(d, `invalid parameter "${d.args[0]}"`);
      const choose = d.args[1];
      if (choose !== undefined && choose !== 'least_conn' && choose !== 'least_time=header' && choose !== 'least_time=last_byte' && choose !== 'least_time') {
        return t.error(d, `invalid parameter "${choose}"`);
      }
      const balance: Obj = { method: 'random', two: true, choose: choose === undefined ? 'least_conn' : choose.startsWith('least_time') ? 'least_time' : 'least_conn' };
      if (choose?.startsWith('least_time=')) balance.measure = choose.slice(11);
      setBalance(d, frame, t, balance);
    },
  },
  least_time: {
    contexts: ['upstream'],
    args: [0, 2],
    apply(d, frame, t) {
      const measure = d.args[0] ?? 'header';
      if (measure !== 'header' && measure !== 'last_byte') return t.error(d, `invalid parameter "${measure}"`);
      if (d.args[1] !== undefined && d.args[1] !== 'inflight') return t.error(d, `invalid parameter "${d.args[1]}"`);
      setBalance(d, frame, t, d.args[1] === 'inflight' ? { method: 'least_time', measure, inflight: true } : { method: 'least_time', measure });
    },
  },
  // nginx Plus: sticky cookie NAME [expires=TIME|max] [domain=D] [path=P] [httponly] [secure] [samesite=V]; fulcrum adds secret=.
  // It combines with the balancing method (new sessions go where the method says), so it is not one itself.
  sticky: {
    contexts: ['upstream'],
    args: [2, Infinity],
    apply(d, frame, t) {
      if (d.args[0] !== 'cookie') return t.error(d, `sticky method "${d.args[0]}" is not supported (only "cookie")`);
      const cookie: Obj = { cookie: d.args[1]! };
      for (const param of d.args.slice(2)) {
        if (param === 'httponly' || param === 'secure') cookie[param] = true;
        else if (param.startsWith('expires=')) cookie.expires = param.slice(8) === 'max' ? 'max' : time(d, t, param.slice(8));
        else if (param.startsWith('path=')) cookie.path = param.slice(5);
        else if (param.startsWith('domain=')) cookie.domain = param.slice(7);
        else if (param.startsWith('samesite=')) {
          const v = param.slice(9).toLowerCase();
          if (v !== 'strict' && v !== 'lax' && v !== 'none') return t.error(d, `invalid parameter "${param}" (samesite=strict|lax|none)`);
          cookie.samesite = v;
        } else if (param.startsWith('secret=') && param.length > 7) cookie.secret = param.slice(7);
        else return t.error(d, `invalid parameter "${param}"`);
      }
      t.setOnce(d, frame, 'sticky', cookie);
    },
  },
  health_check: {
    contexts: ['upstream', 'location'],
    args: [0, Infinity],
    apply(d, frame, t) {
      if (frame.context === 'location') {
        return t.error(d, 'fulcrum takes "health_check" in the upstream block (nginx Plus puts it in the location that proxies to the upstream): move it there');
      }
      const hc = parseHealthCheck(d, t);
      if (hc !== undefined) t.setOnce(d, frame, 'health_check', hc);
    },
  },
  panic_threshold: scalar(['upstream'], (d, t, a) => integer(d, t, a.replace(/%$/, ''), 0)),
  // fulcrum: retry_budget PERCENT[%] [min=N] [window=TIME]
  retry_budget: {
    contexts: ['upstream'],
    args: [1, 3],
    apply(d, frame, t) {
      const percent = integer(d, t, d.args[0]!.replace(/%$/, ''), 0);
      if (percent === undefined) return;
      const budget: Obj = { percent };
      for (const param of d.args.slice(1)) {
        if (param.startsWith('min=')) budget.min = integer(d, t, param.slice(4), 0);
        else if (param.startsWith('window=')) budget.window = time(d, t, param.slice(7));
        else return t.error(d, `invalid parameter "${param}"`);
      }
      t.setOnce(d, frame, 'retry_budget', budget);
    },
  },

  // ---- inheritable settings (http, server, location)
  access_log: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      const entry = parseAccessLog(d, t);
      if (entry === undefined) return;
      const existing = frame.target.access_log;
      if (entry === 'off' || existing === 'off') {
        if (existing !== undefined) return t.error(d, '"access_log off" cannot be combined with other access_log directives');
        frame.target.access_log = 'off';
        t.mark([...frame.path, 'access_log'], d);
        return;
      }
      t.push(d, frame, 'access_log', entry);
    },
  },
  client_max_body_size: scalar(HSL, size),
  client_header_timeout: scalar(HS, time),
  client_body_timeout: scalar(HSL, time),
  client_header_buffer_size: scalar(HS, size),
  client_body_buffer_size: scalar(HSL, size),
  large_client_header_buffers: {
    contexts: HS,
    args: [2, 2],
    apply(d, frame, t) {
      const number = integer(d, t, d.args[0]!, 1);
      const bytes = size(d, t, d.args[1]!);
      if (number !== undefined && bytes !== undefined) t.setOnce(d, frame, 'large_client_header_buffers', { number, size: bytes });
    },
  },
  keepalive_timeout: {
    contexts: ['http', 'server', 'location', 'upstream'],
    args: [1, 2],
    apply(d, frame, t) {
      if (frame.context !== 'upstream' && d.args.length === 2) t.warn(d, 'the second keepalive_timeout parameter (header timeout) is ignored');
      if (frame.context === 'upstream' && d.args.length === 2) return t.error(d, 'invalid number of arguments in "keepalive_timeout" directive');
      t.setOnce(d, frame, 'keepalive_timeout', time(d, t, d.args[0]!));
    },
  },
  keepalive_requests: {
    contexts: ['http', 'server', 'location', 'upstream'],
    args: [1, 1],
    apply(d, frame, t) {
      t.setOnce(d, frame, 'keepalive_requests', integer(d, t, d.args[0]!, 0));
    },
  },
  send_timeout: scalar(HSL, time),
  chunked_transfer_encoding: scalar(HSL, flag),
  underscores_in_headers: scalar(HS, flag),
  ignore_invalid_headers: scalar(HS, flag),
  merge_slashes: scalar(HS, flag),
  server_tokens: scalar(HSL, flag),
  default_type: scalar(HSL, text),
  root: scalar(HSL, text),
  index: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      t.setOnce(d, frame, 'index', [...d.args]);
    },
  },
  allow: accessRule('allow'),
  deny: accessRule('deny'),
  error_page: {
    contexts: HSL,
    args: [2, Infinity],
    apply(d, frame, t) {
      const args = [...d.args];
      const uri = args.pop()!;
      let response: number | undefined;
      const last = args[args.length - 1]!;
      if (last.startsWith('=')) {
        args.pop();
        if (last === '=') response = -1;
        else {
          response = /^=\d{3}$/.test(last) ? Number(last.slice(1)) : NaN;
          if (!(response >= 100 && response <= 599)) return t.error(d, `invalid value "${last}"`);
        }
      }
      if (args.length === 0) return t.error(d, 'invalid number of arguments in "error_page" directive');
      const codes: number[] = [];
      for (const a of args) {
        const code = /^\d{3}$/.test(a) ? Number(a) : NaN;
        if (!(code >= 300 && code <= 599)) return t.error(d, `value "${a}" must be between 300 and 599`);
        if (code === 499) return t.error(d, `value "${a}" must be between 300 and 599 and not 499`);
        codes.push(code);
      }
      t.push(d, frame, 'error_page', response === undefined ? { codes, uri } : { codes, response, uri });
    },
  },
  add_header: {
    contexts: HSL,
    args: [2, 3],
    apply(d, frame, t) {
      if (d.args.length === 3 && d.args[2] !== 'always') return t.error(d, `invalid parameter "${d.args[2]}"`);
      t.push(d, frame, 'add_header', { name: d.args[0]!, value: d.args[1]!, always: d.args.length === 3 });
    },
  },
  proxy_intercept_errors: scalar(HSL, flag),
  proxy_connect_timeout: scalar(HSL, time),
  proxy_read_timeout: scalar(HSL, time),
  proxy_send_timeout: scalar(HSL, time),
  proxy_buffering: scalar(HSL, flag),
  proxy_request_buffering: scalar(HSL, flag),
  proxy_http_version: scalar(HSL, (d, t, a) => {
    if (a !== '1.0' && a !== '1.1') return void t.error(d, `invalid value "${a}" in "proxy_http_version" directive`);
    return a;
  }),
  proxy_set_header: {
    contexts: HSL,
    args: [2, 2],
    apply(d, frame, t) {
      t.push(d, frame, 'proxy_set_header', { name: d.args[0]!, value: d.args[1]! });
    },
  },
  proxy_hide_header: {
    contexts: HSL,
    args: [1, 1],
    apply(d, frame, t) {
      t.push(d, frame, 'proxy_hide_header', d.args[0]!);
    },
  },
  proxy_pass_header: {
    contexts: HSL,
    args: [1, 1],
    apply(d, frame, t) {
      t.push(d, frame, 'proxy_pass_header', d.args[0]!);
    },
  },
  proxy_next_upstream: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      const known = ['error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429', 'non_idempotent', 'off'];
      for (const a of d.args) if (!known.includes(a)) return t.error(d, `invalid value "${a}" in "proxy_next_upstream" directive`);
      if (d.args.includes('off') && d.args.length > 1) return t.error(d, '"off" cannot be combined with other values in "proxy_next_upstream"');
      t.setOnce(d, frame, 'proxy_next_upstream', [...d.args]);
    },
  },
  proxy_next_upstream_tries: scalar(HSL, (d, t, a) => integer(d, t, a, 0)),
  proxy_next_upstream_timeout: scalar(HSL, time),
  proxy_redirect: scalar(HSL, (d, t, a) => {
    if (a !== 'off' && a !== 'default') return void t.error(d, `proxy_redirect "${a}" is not supported (only "off" and "default")`);
    return a;
  }),
  retry_idempotency_key: scalar(HSL, flag),
  debug_header: scalar(HSL, flag),
  map: {
    contexts: ['http'],
    args: [2, 2],
    block: true,
    apply(d, frame, t) {
      const variable = d.args[1]!;
      if (!/^\$[A-Za-z0-9_]+$/.test(variable)) return t.error(d, `invalid variable name "${variable}"`);
      const map: Obj = { source: d.args[0]!, variable: variable.slice(1) };
      const entries: Obj[] = [];
      const keys = new Set<string>();
      const index = t.push(d, frame, 'map', map);
      for (const e of d.block!) {
        if (e.block !== undefined) {
          t.error(e, 'unexpected "{" in a map block');
          continue;
        }
        const special = e.name === 'default' || e.name === 'hostnames' || e.name === 'volatile';
        if (e.name === 'hostnames' || e.name === 'volatile') {
          // volatile: fulcrum never caches a map's value within a request.
          if (e.args.length !== 0) t.error(e, 'invalid number of the map parameters');
          else if (e.name === 'hostnames') {
            if (entries.length > 0) t.error(e, '"hostnames" must come before the map\'s values');
            map.hostnames = true;
          }
          continue;
        }
        if (e.args.length !== 1) {
          t.error(e, 'invalid number of the map parameters');
          continue;
        }
        if (special) {
          if (map.default !== undefined) t.error(e, 'duplicate default map parameter');
          map.default = e.args[0]!;
          continue;
        }
        // "\\default" is the string "default", not the parameter.
        const key = e.name.startsWith('\\') ? e.name.slice(1) : e.name;
        const folded = key.startsWith('~') ? key : key.toLowerCase();
        if (keys.has(folded)) {
          t.error(e, `conflicting parameter "${key}"`);
          continue;
        }
        keys.add(folded);
        t.mark([...frame.path, 'map', index, 'entries', entries.length], e);
        entries.push({ key, value: e.args[0]! });
      }
      map.entries = entries;
    },
  },
  limit_conn_zone: {
    contexts: ['http'],
    args: [2, 2],
    apply(d, frame, t) {
      const zone = /^zone=([^:]+)(?::(.+))?$/.exec(d.args[1]!);
      if (zone === null) return t.error(d, `invalid zone "${d.args[1]}"`);
      const entry: Obj = { name: zone[1]!, key: d.args[0]! };
      if (zone[2] !== undefined) entry.size = size(d, t, zone[2]);
      t.push(d, frame, 'limit_conn_zone', entry);
    },
  },
  limit_conn: {
    contexts: HSL,
    args: [2, 2],
    apply(d, frame, t) {
      const number = integer(d, t, d.args[1]!, 1);
      if (number !== undefined) t.push(d, frame, 'limit_conn', { zone: d.args[0]!, number });
    },
  },
  limit_conn_status: scalar(HSL, (d, t, a) => integer(d, t, a, 400)),
  limit_req_zone: {
    contexts: ['http'],
    args: [3, 4],
    apply(d, frame, t) {
      const entry: Obj = { key: d.args[0]! };
      for (const a of d.args.slice(1)) {
        const zone = /^zone=([^:]+):(.+)$/.exec(a);
        const rate = /^rate=([0-9]+)r\/([sm])$/.exec(a);
        if (zone !== null) {
          entry.name = zone[1]!;
          entry.size = size(d, t, zone[2]!);
          if (entry.size === undefined) return;
        } else if (rate !== null) {
          if (+rate[1]! === 0) return t.error(d, `invalid rate "${a}"`);
          entry.rate = rate[2] === 's' ? +rate[1]! : +rate[1]! / 60;
        } else if (a !== 'sync') {
          return t.error(d, a.startsWith('rate=') ? `invalid rate "${a}"` : `invalid parameter "${a}"`);
        }
      }
      if (entry.name === undefined) return t.error(d, `"${d.name}" must have "zone" parameter`);
      if (entry.rate === undefined) entry.rate = 1; // nginx's default rate is 1r/s
      t.push(d, frame, 'limit_req_zone', entry);
    },
  },
  limit_req: {
    contexts: HSL,
    args: [1, 3],
    apply(d, frame, t) {
      const entry: Obj = {};
      for (const a of d.args) {
        const m = /^(zone|burst|delay)=(.*)$/.exec(a);
        if (a === 'nodelay') entry.nodelay = true;
        else if (m === null) return t.error(d, `invalid parameter "${a}"`);
        else if (m[1] === 'zone') entry.zone = m[2]!;
        else {
          const n = /^[0-9]+$/.test(m[2]!) ? +m[2]! : NaN;
          if (!(n >= (m[1] === 'burst' ? 1 : 0))) return t.error(d, `invalid ${m[1]} value "${m[2]}"`);
          entry[m[1]!] = n;
        }
      }
      if (entry.zone === undefined) return t.error(d, `"${d.name}" must have "zone" parameter`);
      if (entry.nodelay === true && entry.delay !== undefined) return t.error(d, '"delay" and "nodelay" cannot be used together');
      t.push(d, frame, 'limit_req', entry);
    },
  },
  limit_req_status: scalar(HSL, (d, t, a) => {
    const n = integer(d, t, a, 400);
    if (n !== undefined && n > 599) return void t.error(d, `value must be between 400 and 599`);
    return n;
  }),
  limit_req_dry_run: scalar(HSL, (d, t, a) => flag(d, t, a)),
  limit_req_log_level: scalar(HSL, (d, t, a) => {
    if (['info', 'notice', 'warn', 'error'].includes(a)) return a;
    t.error(d, `invalid value "${a}" in "${d.name}" directive`);
    return undefined;
  }),

  // ---- headers and charset filters, redirects, etag
  expires: {
    contexts: HSL,
    args: [1, 2],
    apply(d, frame, t) {
      const parsed = parseExpires(d.args);
      if ('error' in parsed) return t.error(d, parsed.error);
      t.setOnce(d, frame, 'expires', parsed.value);
    },
  },
  charset: scalar(HSL, text),
  charset_types: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      t.setOnce(d, frame, 'charset_types', [...d.args]);
    },
  },
  source_charset: {
    contexts: HSL,
    args: [1, 1],
    apply(d, _frame, t) {
      t.error(d, 'charset recoding is not supported: fulcrum only adds "charset" to Content-Type');
    },
  },
  override_charset: {
    contexts: HSL,
    args: [1, 1],
    apply(d, _frame, t) {
      t.error(d, 'charset recoding is not supported: fulcrum only adds "charset" to Content-Type');
    },
  },
  absolute_redirect: scalar(HSL, flag),
  port_in_redirect: scalar(HSL, flag),
  server_name_in_redirect: scalar(HSL, flag),
  etag: scalar(HSL, flag),

  // ---- ngx_http_gzip_module
  gzip: scalar(HSL, flag),
  gzip_types: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      t.setOnce(d, frame, 'gzip_types', [...d.args]);
    },
  },
  gzip_min_length: scalar(HSL, size),
  gzip_comp_level: scalar(HSL, (d, t, a) => {
    const level = integer(d, t, a, 0);
    if (level === undefined) return undefined;
    // nginx's ngx_conf_check_num_bounds wording.
    if (level < 1 || level > 9) return void t.error(d, `"${d.name}" directive must be between 1 and 9`);
    return level;
  }),
  gzip_vary: scalar(HSL, flag),
  gzip_proxied: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      const known = ['off', 'expired', 'no-cache', 'no-store', 'private', 'no_last_modified', 'no_etag', 'auth', 'any'];
      for (const a of d.args) if (!known.includes(a)) return t.error(d, `invalid value "${a}" in "gzip_proxied" directive`);
      t.setOnce(d, frame, 'gzip_proxied', [...d.args]);
    },
  },
  gzip_http_version: scalar(HSL, (d, t, a) => {
    if (a !== '1.0' && a !== '1.1') return void t.error(d, `invalid value "${a}" in "gzip_http_version" directive, it must be "1.0" or "1.1"`);
    return a;
  }),
  gzip_disable: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      for (const a of d.args) {
        t.push(d, frame, 'gzip_disable', a);
      }
    },
  },

  // ---- ngx_http_auth_basic_module, satisfy, ngx_http_realip_module
  auth_basic: scalar(HSL, text),
  auth_basic_user_file: scalar(HSL, text),
  satisfy: scalar(HSL, (d, t, a) => {
    if (a === 'all' || a === 'any') return a;
    return void t.error(d, `invalid value "${a}" in "satisfy" directive, it must be "all" or "any"`);
  }),
  set_real_ip_from: {
    contexts: HSL,
    args: [1, 1],
    apply(d, frame, t) {
      t.push(d, frame, 'set_real_ip_from', d.args[0]!);
    },
  },
  real_ip_header: scalar(HSL, (d, t, a) => {
    if (a === 'proxy_protocol') return void t.error(d, '"real_ip_header proxy_protocol" is not supported: fulcrum has no PROXY protocol listener');
    return a;
  }),
  real_ip_recursive: scalar(HSL, flag),

  // ---- TLS (http or server)
  ssl_certificate: {
    contexts: HS,
    args: [1, 1],
    apply(d, frame, t) {
      t.push(d, frame, 'ssl_certificate', d.args[0]!);
    },
  },
  ssl_certificate_key: {
    contexts: HS,
    args: [1, 1],
    apply(d, frame, t) {
      t.push(d, frame, 'ssl_certificate_key', d.args[0]!);
    },
  },
  ssl_protocols: {
    contexts: HS,
    args: [1, Infinity],
    apply(d, frame, t) {
      const known = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
      for (const a of d.args) if (!known.includes(a)) return t.error(d, `invalid value "${a}" in "ssl_protocols" directive`);
      t.setOnce(d, frame, 'ssl_protocols', [...d.args]);
    },
  },
  ssl_ciphers: scalar(HS, text),
  ssl_prefer_server_ciphers: scalar(HS, flag),
  ssl_session_cache: {
    contexts: HS,
    args: [1, 2],
    apply(d, frame, t) {
      for (const a of d.args) {
        if (!/^(off|none|builtin(:[0-9]+)?|shared:[A-Za-z0-9_]+:[0-9]+[kKmM]?)$/.test(a)) return t.error(d, `invalid session cache "${a}"`);
      }
      t.setOnce(d, frame, 'ssl_session_cache', d.args.join(' '));
    },
  },
  ssl_session_timeout: scalar(HS, time),
  ssl_session_tickets: scalar(HS, flag),
  ssl_ecdh_curve: scalar(HS, text),
  ssl_dhparam: scalar(HS, text),
  ssl_stapling: scalar(HS, flag),
  // client certificates
  ssl_client_certificate: scalar(HS, text),
  ssl_verify_client: scalar(HS, (d, t, a) => {
    if (a === 'on' || a === 'off' || a === 'optional' || a === 'optional_no_ca') return a;
    t.error(d, `invalid value "${a}" in "ssl_verify_client" directive, it must be "on", "off", "optional" or "optional_no_ca"`);
    return undefined;
  }),
  ssl_verify_depth: scalar(HS, (d, t, a) => integer(d, t, a, 0)),
  ssl_trusted_certificate: scalar(HS, text),
  // TLS to upstreams
  proxy_ssl_verify: scalar(HSL, flag),
  proxy_ssl_trusted_certificate: scalar(HSL, text),
  proxy_ssl_verify_depth: scalar(HSL, (d, t, a) => integer(d, t, a, 0)),
  proxy_ssl_server_name: scalar(HSL, flag),
  proxy_ssl_name: scalar(HSL, text),
  proxy_ssl_protocols: {
    contexts: HSL,
    args: [1, Infinity],
    apply(d, frame, t) {
      const known = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
      for (const a of d.args) if (!known.includes(a)) return t.error(d, `invalid value "${a}" in "proxy_ssl_protocols" directive`);
      t.setOnce(d, frame, 'proxy_ssl_protocols', [...d.args]);
    },
  },
  proxy_ssl_ciphers: scalar(HSL, text),
  proxy_ssl_certificate: scalar(HSL, text),
  proxy_ssl_certificate_key: scalar(HSL, text),
  proxy_ssl_session_reuse: scalar(HSL, flag),
  // fulcrum's ACME client
  acme: scalar(['server'], flag),
  acme_email: scalar(HS, text),
  acme_directory: scalar(HS, text),
  acme_eab_kid: scalar(HS, text),
  acme_eab_hmac_key: scalar(HS, text),
  acme_challenge: {
    contexts: HS,
    args: [1, 2],
    apply(d, frame, t) {
      for (const a of d.args) if (a !== 'http-01' && a !== 'tls-alpn-01') return t.error(d, `invalid value "${a}" in "acme_challenge" directive, it must be "http-01" or "tls-alpn-01"`);
      t.setOnce(d, frame, 'acme_challenge', [...d.args]);
    },
  },
  acme_key_type: {
    contexts: HS,
    args: [1, 2],
    apply(d, frame, t) {
      for (const a of d.args) if (a !== 'ecdsa' && a !== 'rsa') return t.error(d, `invalid value "${a}" in "acme_key_type" directive, it must be "ecdsa" or "rsa"`);
      t.setOnce(d, frame, 'acme_key_type', [...d.args]);
    },
  },
  acme_renew_before: scalar(HS, time),
  acme_retry: {
    contexts: HS,
    args: [1, 2],
    apply(d, frame, t) {
      const min = time(d, t, d.args[0]!);
      const max = d.args[1] === undefined ? undefined : time(d, t, d.args[1]);
      if (min === undefined || (d.args[1] !== undefined && max === undefined)) return;
      t.setOnce(d, frame, 'acme_retry', max === undefined ? { min } : { min, max });
    },
  },
  acme_storage: scalar(['http'], text),
  acme_ca_root: scalar(HS, text),
  ssl: {
    contexts: HS,
    args: [1, 1],
    apply(d, _frame, t) {
      t.error(d, 'the "ssl" directive is obsolete (removed in nginx 1.25.1); use the "ssl" parameter of "listen"');
    },
  },
};

function accessRule(action: 'allow' | 'deny'): DirectiveSpec {
  return {
    contexts: HSL,
    args: [1, 1],
    apply(d, frame, t) {
      const source = d.args[0]!;
      if (source !== 'all' && !/^[0-9A-Fa-f:.]+(\/[0-9]{1,3})?$/.test(source)) {
        return t.error(d, `invalid parameter "${source}"`);
      }
      t.push(d, frame, 'access', { action, source });
    },
  };
}

export const NGINX_DIRECTIVES = Object.keys(DIRECTIVES);
export const NGINX_IGNORED_DIRECTIVES = Object.keys(IGNORED);
