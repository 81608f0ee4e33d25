/**
 * The admin listener: JSON API, Prometheus /metrics and the status page.
 * Off unless the config has an `admin` block; bound to 127.0.0.1 unless its
 * `listen` names another address. Reading (GET) is open to whoever can reach
 * the listener; every change (POST, DELETE) needs `Authorization: Bearer
 * <token>`, and without a configured token changes are refused.
 * docs/admin-openapi.yaml documents every route with examples.
 *
 * It runs where the control plane runs (the single process, or the
 * supervisor), never in a worker: it is not on the request path.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatDiagnostic } from '../config/errors.js';
import { loadConfig, type ConfigFormat } from '../config/load.js';
import { UpstreamServer, type Config } from '../config/schema.js';
import { LogSinks } from '../log/access-log.js';
import { log } from '../log/error-log.js';
import { compile } from '../runtime/compile.js';
import type { RuntimeReport } from '../runtime/report.js';
import { ServerRegistry } from '../upstream/group.js';
import type { ServerOp } from '../runtime/membership.js';
import type { ControlPlane } from './control.js';
import type { Metrics } from './metrics.js';
import { STATUS_PAGE_HTML } from './status-page.js';
import { statusView } from './status.js';

export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:9090';
const MAX_BODY = 1024 * 1024;
const OPENAPI_FILE = fileURLToPath(new URL('../../../docs/admin-openapi.yaml', import.meta.url));

export interface AdminSettings {
  listen: string;
  token: string | undefined;
}

/** "127.0.0.1:9090", "9090" (127.0.0.1), "*:9090" (all IPv4), "[::1]:9090". */
export function parseAdminListen(text: string): { host: string; port: number } | string {
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:([0-9]+)$/.exec(text);
  let host: string;
  let port: string;
  if (v6 !== null) [host, port] = [v6[1]!, v6[2]!];
  else if (/^[0-9]+$/.test(text)) [host, port] = ['127.0.0.1', text];
  else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return `admin listen "${text}": give address:port or a port`;
    [host, port] = [text.slice(0, colon), text.slice(colon + 1)];
  }
  if (host === '*') host = '0.0.0.0';
  if (host !== 'localhost' && net.isIP(host) === 0) return `admin listen "${text}": the address must be an IP address`;
  if (!/^[0-9]{1,5}$/.test(port) || +port > 65535) return `admin listen "${text}": invalid port`;
  return { host, port: +port };
}

/** The admin settings of a config: undefined when there is no admin block. "env:NAME" tokens are read from the environment. */
export function adminSettings(config: Config): AdminSettings | undefined {
  const a = config.admin;
  if (a === undefined) return undefined;
  let token = a.token;
  if (token?.startsWith('env:') === true) {
    const name = token.slice(4);
    token = process.env[name];
    if (token === undefined || token === '') log().warn({ variable: name }, 'admin token variable is not set: changes through the admin API are refused');
  }
  return { listen: a.listen, token: token === '' ? undefined : token };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class AdminServer {
  private server: http.Server | undefined;
  private settings: AdminSettings | undefined;
  /** Loaded on the first scrape: prom-client costs ~10 MiB of RSS a proxy without metrics should not pay. */
  private metrics: Promise<Metrics> | undefined;
  private readonly sse = new Set<http.ServerResponse>();

  constructor(private readonly control: ControlPlane) {}

  private loadMetrics(): Promise<Metrics> {
    return (this.metrics ??= import('./metrics.js').then((m) => m.createMetrics(this.control)));
  }

  /** The bound address ("127.0.0.1:9090"), once listening. */
  get address(): string | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : undefined;
  }

  /** The listening socket's descriptor (binary upgrade). */
  get fd(): number | undefined {
    const fd = (this.server as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /**
   * Starts, moves or stops the listener to match the config (at start and
   * after each reload). `inheritedFd`: the socket of the process this one
   * replaces (binary upgrade). Throws when it cannot listen.
   */
  async configure(settings: AdminSettings | undefined, inheritedFd?: number): Promise<void> {
    const old = this.settings;
    this.settings = settings;
    if (settings !== undefined && old !== undefined && settings.listen === old.listen && this.server !== undefined) return;
    if (this.server !== undefined) await this.close();
    if (settings === undefined) return;
    const where = parseAdminListen(settings.listen);
    if (typeof where === 'string') throw new Error(where);
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Never let an admin request take the process down.
        log().error({ error: (err as Error).message }, 'admin API error');
        res.destroy();
      });
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (inheritedFd !== undefined) server.listen({ fd: inheritedFd }, done);
      else server.listen(where.port, where.host, done);
    });
    this.server = server;
    log().info({ address: this.address, changes: settings.token === undefined ? 'refused (no token)' : 'need the bearer token' }, 'admin listener ready');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    for (const res of this.sse) res.end();
    this.sse.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ------------------------------------------------------------------ routing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const method = req.method ?? 'GET';
      const parts = url.pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
      if (method !== 'GET' && method !== 'HEAD') this.authorize(req);
      const route = `${method} /${parts.map((p, i) => (parts[0] === 'api' && parts[1] === 'upstreams' && (i === 2 || i === 4) ? ':' : p)).join('/')}`;
      switch (route) {
        case 'GET /':
          res.writeHead(302, { Location: '/status' }).end();
          return;
        case 'GET /status':
          return send(res, 200, STATUS_PAGE_HTML, 'text/html; charset=utf-8');
        case 'GET /metrics': {
          const metrics = await this.loadMetrics();
          return send(res, 200, await metrics.scrape(), metrics.registry.contentType);
        }
        case 'GET /openapi.yaml':
          return send(res, 200, fs.readFileSync(OPENAPI_FILE, 'utf8'), 'application/yaml; charset=utf-8');
        case 'GET /api':
          return json(res, 200, { ...this.control.info(), reloads: this.control.reloads(), admin: { changes: this.settings?.token === undefined ? 'disabled' : 'token' } });
        case 'GET /api/workers':
          return json(res, 200, {
            workers: (await this.control.workerReports()).map((r) => ({
              pid: r.pids[0],
              generation: r.generation,
              connections: r.connections,
              servers: r.upstreams.flatMap((u) => u.servers.map((s) => ({ upstream: u.name, address: s.address, state: s.state, active: s.active, remote_active: s.remoteActive }))),
            })),
          });
        case 'GET /api/upstreams':
          return json(res, 200, { upstreams: (await this.control.report()).upstreams.map(publicUpstream) });
        case 'GET /api/upstreams/:': {
          const u = (await this.control.report()).upstreams.find((x) => x.name === parts[2]);
          if (u === undefined) throw new HttpError(404, `no upstream "${parts[2]}"`);
          return json(res, 200, publicUpstream(u));
        }
        case 'GET /api/upstreams/:/servers/:': {
          const s = (await this.control.report()).upstreams.find((x) => x.name === parts[2])?.servers.find((x) => x.address === parts[4]);
          if (s === undefined) throw new HttpError(404, `no server "${parts[4]}" in upstream "${parts[2]}"`);
          return json(res, 200, publicServer(s));
        }
        case 'POST /api/upstreams/:/servers':
          return await this.addServer(req, res, parts[2]!);
        case 'DELETE /api/upstreams/:/servers/:':
          return await this.change(res, { op: 'remove', upstream: parts[2]!, server: parts[4]! });
        case 'POST /api/upstreams/:/servers/:/drain':
        case 'POST /api/upstreams/:/servers/:/disable':
        case 'POST /api/upstreams/:/servers/:/enable':
          return await this.change(res, { op: parts[5] as 'drain' | 'disable' | 'enable', upstream: parts[2]!, server: parts[4]! });
        case 'POST /api/reload': {
          const r = await this.control.reload();
          return json(res, r.ok ? 200 : 422, r.ok ? { reloaded: true } : { reloaded: false, error: r.error });
        }
        case 'POST /api/config/validate':
          return await this.validate(req, res, url);
        case 'GET /api/events':
          return await this.events(req, res, url);
        default:
          throw new HttpError(parts[0] === 'api' && knownPath(parts) ? 405 : 404, `no route ${method} ${url.pathname}`);
      }
    } catch (err) {
      if (err instanceof HttpError) {
        const headers: http.OutgoingHttpHeaders = err.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="fulcrum admin"' } : {};
        return json(res, err.status, { error: err.message }, headers);
      }
      log().error({ error: (err as Error).message }, 'admin API error');
      return json(res, 500, { error: (err as Error).message });
    }
  }

  private authorize(req: http.IncomingMessage): void {
    const token = this.settings?.token;
    if (token === undefined) throw new HttpError(403, 'changes through the admin API are disabled: set a token in the admin block');
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) throw new HttpError(401, 'a bearer token is required (Authorization: Bearer <token>)');
    // Compare digests: equal length, constant time.
    const a = createHash('sha256').update(m[1]!).digest();
    const b = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(a, b)) throw new HttpError(401, 'wrong token');
  }

  private async change(res: http.ServerResponse, op: ServerOp): Promise<void> {
    const result = await this.control.applyOp(op);
    if (!result.ok) throw new HttpError(result.status, result.error);
    const report = await this.control.report();
    const server = report.upstreams.find((u) => u.name === op.upstream)?.servers.find((s) => s.address === op.server);
    json(res, op.op === 'add' ? 201 : 200, { ok: true, op: op.op, upstream: op.upstream, server: op.server, state: server === undefined ? undefined : publicServer(server) });
  }

  private async addServer(req: http.IncomingMessage, res: http.ServerResponse, upstream: string): Promise<void> {
    const body = await readBody(req);
    let data: unknown;
    try {
      data = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'the body must be JSON: {"address": "host:port", ...}');
    }
    const parsed = UpstreamServer.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new HttpError(400, issue.code === 'unrecognized_keys' ? `unknown key "${issue.keys.join('", "')}"` : `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    if (parsed.data.resolve || parsed.data.service !== undefined) throw new HttpError(400, '"resolve" and "service" are for the config file; add resolved addresses here');
    await this.change(res, { op: 'add', upstream, server: parsed.data.address, params: parsed.data });
  }

  private async validate(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const info = this.control.info();
    let text = body;
    let format = (url.searchParams.get('format') ?? undefined) as ConfigFormat | undefined;
    if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
      let data: { config?: unknown; format?: unknown };
      try {
        data = JSON.parse(body) as typeof data;
      } catch {
        throw new HttpError(400, 'a JSON body must be {"config": "text", "format": "nginx|yaml|json"}');
      }
      if (typeof data.config !== 'string') throw new HttpError(400, '"config" must be the configuration text');
      text = data.config;
      if (typeof data.format === 'string') format = data.format as ConfigFormat;
    }
    if (format !== undefined && format !== 'nginx' && format !== 'yaml' && format !== 'json') throw new HttpError(400, `unknown format "${format}" (nginx, yaml or json)`);
    // Relative paths and includes resolve as for the running config file.
    const result = validateConfigText(info.configPath, format ?? info.format, text);
    json(res, result.valid ? 200 : 422, result);
  }

  private async events(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const interval = Math.min(60_000, Math.max(100, Number(url.searchParams.get('interval') ?? 1000) || 1000));
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(`retry: 2000\n\n`);
    this.sse.add(res);
    let prev: { report: RuntimeReport; at: number } | undefined;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const tick = async (): Promise<void> => {
      if (closed) return;
      try {
        const report = await this.control.report();
        const at = performance.now();
        const view = statusView(this.control.info(), report, prev?.report, prev === undefined ? 1 : (at - prev.at) / 1000);
        prev = { report, at };
        if (!closed) res.write(`event: status\ndata: ${JSON.stringify(view)}\n\n`);
      } catch (err) {
        if (!closed) res.write(`event: error\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
      }
      if (!closed) timer = setTimeout(() => void tick(), interval);
    };
    req.on('close', () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      this.sse.delete(res);
    });
    await tick();
  }
}

export interface ValidateResult {
  valid: boolean;
  errors: string[];
  warnings: string[];
}

/** Parses and compiles a configuration text without applying it (nothing is bound, no log file is opened). */
export function validateConfigText(configPath: string, format: ConfigFormat | undefined, text: string): ValidateResult {
  try {
    const loaded = loadConfig(configPath, { format, text });
    const { warnings } = compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 0, dryRun: true });
    return { valid: true, errors: [], warnings: warnings.map(formatDiagnostic) };
  } catch (err) {
    if (err instanceof ConfigError) return { valid: false, errors: err.diagnostics.map(formatDiagnostic), warnings: [] };
    return { valid: false, errors: [(err as Error).message], warnings: [] };
  }
}

function knownPath(parts: string[]): boolean {
  return (parts[1] === 'upstreams' && parts.length <= 6) || ['reload', 'config', 'events', 'workers'].includes(parts[1] ?? '');
}

/** The API's view of a server: the report without internal fields. */
function publicServer(s: RuntimeReport['upstreams'][number]['servers'][number]): Record<string, unknown> {
  return {
    address: s.address,
    state: s.state,
    source: s.source,
    backup: s.backup,
    weight: s.weight,
    max_fails: s.maxFails,
    fail_timeout_ms: s.failTimeoutMs,
    drain: s.drain,
    down: s.down,
    healthy: s.healthy,
    fails: s.fails,
    active: s.active,
    connections: s.connections,
    requests: s.requests,
    responses: { '1xx': s.responses[1], '2xx': s.responses[2], '3xx': s.responses[3], '4xx': s.responses[4], '5xx': s.responses[5] },
    failures: s.failures,
    retries: s.retries,
    latency_ms: Math.round(s.latencyEwmaMs * 1000) / 1000,
    health_transitions: { down: s.wentDown, up: s.cameUp },
  };
}

function publicUpstream(u: RuntimeReport['upstreams'][number]): Record<string, unknown> {
  return { name: u.name, method: u.method, implicit: u.implicit, servers: u.servers.map(publicServer) };
}

function send(res: http.ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function json(res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(body);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
