/**
 * nginx variable interpolation: "$scheme://$host$request_uri" is compiled once
 * (at config load) into a list of literal parts and getters; expansion at
 * request time is a few string concatenations. Unknown variables are config
 * errors, as in nginx ("unknown variable").
 */
import { hostname } from 'node:os';
import type { VariableContext } from './context.js';
import { remoteUser } from '../proxy/auth-basic.js';
import { ConnectionPhase, connectionCounts } from '../listeners/connection-counts.js';
import { SSL_VARIABLES } from './ssl.js';

export type Getter = (ctx: VariableContext) => string;

export interface Template {
  /** The source text. */
  readonly source: string;
  /** Set when the template has no variables: expansion is free. */
  readonly constant: string | undefined;
  /** Variable names used, without '$'. */
  readonly variables: readonly string[];
  expand(ctx: VariableContext): string;
}

const HOSTNAME = hostname();
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? '0' + n : '' + n;
}

/** nginx's $time_local: 25/Nov/2026:16:55:36 +0000. */
export function timeLocal(ms: number): string {
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return `${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
}

function seconds3(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/** nginx's $proxy_add_x_forwarded_for: the client's X-Forwarded-For plus $remote_addr. */
export function proxyAddXForwardedFor(ctx: VariableContext): string {
  const xff = ctx.request.headerJoined('x-forwarded-for');
  return xff === undefined ? ctx.remoteAddr : xff + ', ' + ctx.remoteAddr;
}

const SIMPLE: Record<string, Getter> = {
  host: (c) => c.host,
  http_host: (c) => c.request.header('host') ?? '',
  // For an absolute-form target, nginx's $request_uri is its path and query.
  request_uri: (c) => c.request.path,
  uri: (c) => c.uri,
  document_uri: (c) => c.uri,
  args: (c) => c.args,
  query_string: (c) => c.args,
  is_args: (c) => (c.args === '' ? '' : '?'),
  request_method: (c) => c.request.method,
  request: (c) => `${c.request.method} ${c.request.target} HTTP/1.${c.request.versionMinor}`,
  server_protocol: (c) => `HTTP/1.${c.request.versionMinor}`,
  remote_addr: (c) => c.remoteAddr,
  // 0 when the realip module took an address without a port: nginx prints nothing.
  remote_port: (c) => (c.remotePort === 0 ? '' : '' + c.remotePort),
  realip_remote_addr: (c) => c.realipRemoteAddr,
  realip_remote_port: (c) => '' + c.realipRemotePort,
  binary_remote_addr: (c) => c.remoteAddr,
  server_addr: (c) => c.serverAddr,
  server_port: (c) => '' + c.serverPort,
  server_name: (c) => c.serverName,
  scheme: (c) => c.scheme,
  https: (c) => (c.scheme === 'https' ? 'on' : ''),
  proxy_add_x_forwarded_for: proxyAddXForwardedFor,
  proxy_host: (c) => c.proxyHost,
  proxy_port: (c) => c.proxyPort,
  content_length: (c) => c.request.header('content-length') ?? '',
  content_type: (c) => c.request.header('content-type') ?? '',
  request_id: (c) => c.requestId,
  connection: (c) => '' + c.connectionId,
  connection_requests: (c) => '' + c.connectionRequests,
  status: (c) => '' + c.status,
  bytes_sent: (c) => '' + c.bytesSent,
  body_bytes_sent: (c) => '' + c.bodyBytesSent,
  request_length: (c) => '' + c.requestLength,
  request_time: (c) => seconds3(Date.now() - c.startTime),
  msec: () => seconds3(Date.now()),
  time_local: () => timeLocal(Date.now()),
  time_iso8601: () => new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
  upstream_addr: (c) => c.upstreamAddr,
  upstream_status: (c) => c.upstreamStatus,
  upstream_response_time: (c) => c.upstreamResponseTime,
  upstream_connect_time: (c) => c.upstreamConnectTime,
  upstream_header_time: (c) => c.upstreamHeaderTime,
  hostname: () => HOSTNAME,
  connections_active: () => '' + connectionCounts.active,
  connections_reading: () => '' + connectionCounts.phases[ConnectionPhase.Reading],
  connections_writing: () => '' + connectionCounts.phases[ConnectionPhase.Writing],
  connections_waiting: () => '' + connectionCounts.phases[ConnectionPhase.Waiting],
  pid: () => '' + process.pid,
  remote_user: remoteUser,
  nginx_version: () => '1.22.1',
  fulcrum_version: () => '0.1.0',
  ...SSL_VARIABLES,
};

/** Variables with a name suffix: $http_user_agent, $arg_id, $cookie_session... */
function prefixed(name: string): Getter | undefined {
  if (name.startsWith('http_')) {
    const header = name.slice(5).replace(/_/g, '-');
    if (header === 'cookie') return (c) => joinCookies(c);
    return (c) => c.request.headerJoined(header) ?? '';
  }
  if (name.startsWith('sent_http_')) {
    const header = name.slice(10).replace(/_/g, '-');
    return (c) => c.sentHeader(header) ?? '';
  }
  if (name.startsWith('upstream_http_')) {
    const header = name.slice(14).replace(/_/g, '-');
    return (c) => c.upstreamHeader(header) ?? '';
  }
  if (name.startsWith('arg_')) {
    const arg = name.slice(4);
    return (c) => queryArgument(c.args, arg);
  }
  if (name.startsWith('cookie_')) {
    const cookie = name.slice(7);
    return (c) => cookieValue(joinCookies(c), cookie);
  }
  if (/^[1-9]$/.test(name)) {
    const index = +name;
    return (c) => c.captures?.[index] ?? '';
  }
  return undefined;
}

function joinCookies(c: VariableContext): string {
  let out = '';
  const { lower, values } = c.request;
  for (let i = 0; i < lower.length; i++) {
    if (lower[i] === 'cookie') out = out === '' ? values[i]! : out + '; ' + values[i];
  }
  return out;
}

/** $arg_NAME: the first NAME= in the query string, raw (not decoded), like nginx. */
export function queryArgument(args: string, name: string): string {
  if (args === '') return '';
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key.toLowerCase() === name.toLowerCase()) return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return '';
}

export function cookieValue(header: string, name: string): string {
  if (header === '') return '';
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

/** Resolves a variable name to its getter; undefined if nginx would call it unknown. */
export function variableGetter(name: string): Getter | undefined {
  return SIMPLE[name] ?? prefixed(name);
}

export class UnknownVariableError extends Error {
  constructor(readonly variable: string) {
    super(`unknown "${variable}" variable`);
  }
}

const VARIABLE = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g;

/**
 * Variables a configuration defines (`map`), by name without '$'; they are
 * looked up before the built-in ones.
 */
export type VariableScope = ReadonlyMap<string, Getter>;

/**
 * Compiles a string with nginx variables. Throws UnknownVariableError naming
 * the first unknown variable.
 */
export function compileTemplate(source: string, scope?: VariableScope): Template {
  const parts: (string | Getter)[] = [];
  const variables: string[] = [];
  let last = 0;
  for (const m of source.matchAll(VARIABLE)) {
    const name = (m[1] ?? m[2])!;
    const getter = scope?.get(name) ?? variableGetter(name);
    if (getter === undefined) throw new UnknownVariableError(name);
    if (m.index! > last) parts.push(source.slice(last, m.index));
    parts.push(getter);
    variables.push(name);
    last = m.index! + m[0].length;
  }
  if (last < source.length) parts.push(source.slice(last));
  return makeTemplate(source, parts, variables);
}

function makeTemplate(source: string, parts: (string | Getter)[], variables: string[]): Template {
  if (variables.length === 0) {
    const constant = parts.join('');
    return { source, constant, variables, expand: () => constant };
  }
  if (parts.length === 1) {
    const only = parts[0] as Getter;
    return { source, constant: undefined, variables, expand: only };
  }
  return {
    source,
    constant: undefined,
    variables,
    expand(ctx) {
      let out = '';
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        out += typeof p === 'string' ? p : p(ctx);
      }
      return out;
    },
  };
}
