/**
 * compile(): validated configuration model -> immutable runtime table.
 *
 * Everything that can be decided once is decided here: settings inheritance
 * (http -> server -> location, nginx's rules), variables compiled to getters,
 * regexes compiled, location and server-name lookup tables built, upstream
 * groups and their policies made. Every problem found is reported with the
 * file and line of the directive that caused it; nothing is half-applied.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { policySetupFor } from '../balancer/index.js';
import { NameSet } from '../http/name-set.js';
import { roundRobin } from '../balancer/policies/round-robin.js';
import { ConfigError, type ConfigDiagnostic } from '../config/errors.js';
import type { LoadedConfig } from '../config/load.js';
import type {
  Config,
  HttpBlockConfig,
  LocationBlockConfig,
  ReturnConfig,
  RewriteOpConfig,
  ServerBlockConfig,
  Settings,
  UpstreamBlockConfig,
  UpstreamServerConfig,
} from '../config/schema.js';
import type { ModelPath, SourceLocator } from '../config/source-map.js';
import { COMBINED_FORMAT, compileLogFormat, jsonFormatter, type AccessLogTarget, type LineFormatter, type LogSinks } from '../log/access-log.js';
import { LocationMatcher, compileNginxRegex, parseLocationMatch, type MatchableLocation } from '../router/locations.js';
import { ServerNameMatcher } from '../router/server-names.js';
import { DEFAULT_KEEPALIVE, ServerRegistry, UpstreamGroup, parseServerAddress } from '../upstream/group.js';
import { RetryBudget } from '../upstream/retry-budget.js';
import type { ServerState } from '../upstream/server-state.js';
import { AcmeChallengeLocations } from '../tls/acme/http01.js';
import { AcmePlan, certificateFiles } from '../tls/acme/spec.js';
import type { Member } from './membership.js';
import { compileMaps } from '../variables/map.js';
import { LimitReqZone, limitReqZone } from './limit-req.js';
import { compileAuthBasic, compileRealIp } from './compile-access.js';
import { DEFAULT_CHARSET_TYPES, charsetRuntime, charsetTypes } from './header-settings.js';
import { UpstreamTlsCompiler, proxyPassHost } from './upstream-tls.js';
import { clientCaOf, clientVerifyOf, withoutResumptionWhereClientsAreVerified } from './client-verify.js';
import { compileCondition, setVariableNames, type RewriteRuntimeOp } from './rewrite.js';
import { UnknownVariableError, compileTemplate, variableGetter, type Template, type VariableScope } from '../variables/template.js';
import {
  GzipProxied,
  NextUpstream,
  type AccessRules,
  type Action,
  type CompiledAddHeader,
  type EffectiveSettings,
  type ErrorPageRuntime,
  type GzipRuntime,
  type HeaderOp,
  type LimitConnRule,
  type LimitReqRule,
  type ListenerSpec,
  type TryFilesRuntime,
  type LocationRuntime,
  type ProxyRuntime,
  type ReturnRuntime,
  type RuntimeTable,
  type TlsServerConfig,
  type VirtualServer,
} from './table.js';

export interface CompileDeps {
  registry: ServerRegistry;
  logSinks: LogSinks;
  generation: number;
  /** `fulcrum check` compiles without opening log files. */
  dryRun?: boolean;
  /**
   * The servers an upstream has now (discovered addresses, admin changes:
   * src/runtime/membership.ts); without it, the config's servers.
   */
  membership?: (upstream: UpstreamBlockConfig) => readonly Member[];
}

export interface CompileResult {
  table: RuntimeTable;
  warnings: ConfigDiagnostic[];
  /**
   * Makes the table live: applies server parameters to the shared live
   * states, builds the balancing policies and drops states no longer used.
   * Compiling has no side effect on the running configuration until this is
   * called, so a config that fails to compile changes nothing.
   */
  activate(): void;
}

/** Client header names never forwarded as received: hop-by-hop (RFC 9110 7.6.1) and framing, which fulcrum rebuilds. */
export const HOP_BY_HOP_REQUEST = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'content-length', 'expect', 'trailer', 'proxy-authorization'];
/** Upstream response header names never passed on as received. */
export const HOP_BY_HOP_RESPONSE = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'content-length', 'trailer'];
/** nginx hides these upstream headers by default (proxy_hide_header). */
const NGINX_HIDDEN_RESPONSE = ['x-accel-expires', 'x-accel-redirect', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset', 'x-pad'];

/** nginx's default proxy_next_upstream. */
const DEFAULT_NEXT_UPSTREAM = ['error', 'timeout'];

class Compiler {
  readonly errors: ConfigDiagnostic[] = [];
  readonly warnings: ConfigDiagnostic[] = [];
  readonly serverKeys = new Set<string>();
  readonly groups = new Map<string, UpstreamGroup>();
  private readonly formats = new Map<string, LineFormatter>();
  private readonly groupSchemes = new Map<UpstreamGroup, 'http' | 'https'>();
  private readonly upstreamTls = new UpstreamTlsCompiler((p) => this.resolvePath(p));
  /** `acme on` servers and the plain servers that answer their HTTP-01 challenges (src/tls/acme/spec.ts). */
  private acme!: AcmePlan;
  /** The variables the configuration defines (`map`), compiled first: every template may use them. */
  private scope: VariableScope = new Map();

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly deps: CompileDeps,
  ) {}

  get locator(): SourceLocator {
    return this.loaded.locator;
  }

  error(p: ModelPath, message: string): void {
    this.errors.push({ loc: this.locator.locate(p), message, directive: this.locator.directiveAt?.(p) });
  }

  warn(p: ModelPath, message: string): void {
    this.warnings.push({ loc: this.locator.locate(p), message, directive: this.locator.directiveAt?.(p) });
  }

  resolvePath(p: string): string {
    return path.isAbsolute(p) ? p : path.resolve(this.loaded.baseDir, p);
  }

  template(p: ModelPath, source: string): Template | undefined {
    try {
      return compileTemplate(source, this.scope);
    } catch (err) {
      if (err instanceof UnknownVariableError) this.error(p, err.message);
      else throw err;
      return undefined;
    }
  }

  compile(): RuntimeTable {
    const config = this.loaded.config;
    const http = config.http;
    const maps = compileMaps(http.map, (map, entry, message) => this.error(entry === undefined ? ['http', 'map', map] : ['http', 'map', map, 'entries', entry], message));
    this.scope = this.withSetVariables(http, maps);
    this.compileLogFormats(http);
    this.compileUpstreams(http.upstreams);
    // nginx logs every request in the combined format unless told otherwise; fulcrum's default target is stdout.
    const httpSettings = this.settings(BASE_SETTINGS, { ...http, access_log: http.access_log ?? [{ path: 'stdout', format: 'combined' }] }, ['http']);
    this.acme = new AcmePlan(http, { error: (p, m) => this.error(p, m), warn: (p, m) => this.warn(p, m), resolvePath: (f) => this.resolvePath(f) });
    const servers = http.servers.map((s, i) => this.compileServer(s, ['http', 'servers', i], http, httpSettings));
    const listeners = this.compileListeners(http.servers, servers);
    if (listeners.length === 0) this.warn(['http'], 'no server block listens anywhere: fulcrum will accept no connections');
    return {
      generation: this.deps.generation,
      config,
      listeners,
      upstreams: this.groups,
      workerConnections: config.worker_connections,
      shutdownTimeoutMs: config.worker_shutdown_timeout,
      baseDir: this.loaded.baseDir,
    };
  }

  // ------------------------------------------------------------ logging

  private compileLogFormats(http: HttpBlockConfig): void {
    this.formats.set('combined', compileLogFormat(COMBINED_FORMAT, 'default'));
    this.formats.set('json', jsonFormatter());
    for (const [name, f] of Object.entries(http.log_format)) {
      try {
        this.formats.set(name, compileLogFormat(f.format, f.escape, this.scope));
      } catch (err) {
        this.error(['http', 'log_format', name], (err as Error).message);
      }
    }
  }

  private accessLog(p: ModelPath, value: Settings['access_log'], inherited: readonly AccessLogTarget[]): readonly AccessLogTarget[] {
    if (value === undefined) return inherited;
    if (value === 'off') return [];
    const out: AccessLogTarget[] = [];
    value.forEach((entry, i) => {
      const format = this.formats.get(entry.format);
      if (format === undefined) {
        this.error([...p, 'access_log', i], `unknown log format "${entry.format}"`);
        return;
      }
      if (this.deps.dryRun === true) return;
      try {
        const target = entry.path === 'stdout' || entry.path === 'stderr' ? entry.path : this.resolvePath(entry.path);
        out.push({ sink: this.deps.logSinks.get(target), format });
      } catch (err) {
        this.error([...p, 'access_log', i], `cannot open access log "${entry.path}": ${(err as Error).message}`);
      }
    });
    return out;
  }

  // ------------------------------------------------------------ settings inheritance

  private settings(parent: EffectiveSettings, s: Settings, p: ModelPath): EffectiveSettings {
    const pick = <K extends keyof Settings>(key: K): Settings[K] => s[key];
    const headerBuffers = pick('large_client_header_buffers');
    return {
      accessLog: this.accessLog(p, pick('access_log'), parent.accessLog),
      clientMaxBodySize: pick('client_max_body_size') ?? parent.clientMaxBodySize,
      clientHeaderTimeoutMs: pick('client_header_timeout') ?? parent.clientHeaderTimeoutMs,
      clientBodyTimeoutMs: pick('client_body_timeout') ?? parent.clientBodyTimeoutMs,
      clientBodyBufferSize: pick('client_body_buffer_size') ?? parent.clientBodyBufferSize,
      keepaliveTimeoutMs: pick('keepalive_timeout') ?? parent.keepaliveTimeoutMs,
      keepaliveRequests: pick('keepalive_requests') ?? parent.keepaliveRequests,
      sendTimeoutMs: pick('send_timeout') ?? parent.sendTimeoutMs,
      headLimits:
        headerBuffers === undefined
          ? parent.headLimits
          : { maxLineBytes: headerBuffers.size, maxHeadBytes: headerBuffers.size * headerBuffers.number, maxHeaders: parent.headLimits.maxHeaders },
      chunkedTransferEncoding: pick('chunked_transfer_encoding') ?? parent.chunkedTransferEncoding,
      underscoresInHeaders: pick('underscores_in_headers') ?? parent.underscoresInHeaders,
      ignoreInvalidHeaders: pick('ignore_invalid_headers') ?? parent.ignoreInvalidHeaders,
      mergeSlashes: pick('merge_slashes') ?? parent.mergeSlashes,
      serverTokens: pick('server_tokens') ?? parent.serverTokens,
      defaultType: pick('default_type') ?? parent.defaultType,
      index: pick('index') ?? parent.index,
      access: s.access !== undefined ? this.accessRules([...p, 'access'], s.access) : parent.access,
      addHeaders: s.add_header !== undefined ? this.addHeaders([...p, 'add_header'], s.add_header) : parent.addHeaders,
      errorPages: s.error_page !== undefined ? this.errorPages([...p, 'error_page'], s.error_page) : parent.errorPages,
      interceptErrors: pick('proxy_intercept_errors') ?? parent.interceptErrors,
      retryIdempotencyKey: pick('retry_idempotency_key') ?? parent.retryIdempotencyKey,
      debugHeader: pick('debug_header') ?? parent.debugHeader,
      limitConn: s.limit_conn !== undefined ? this.limitConn([...p, 'limit_conn'], s.limit_conn) : parent.limitConn,
      limitConnStatus: pick('limit_conn_status') ?? parent.limitConnStatus,
      limitReq: s.limit_req !== undefined ? this.limitReq([...p, 'limit_req'], s.limit_req) : parent.limitReq,
      limitReqStatus: pick('limit_req_status') ?? parent.limitReqStatus,
      limitReqDryRun: pick('limit_req_dry_run') ?? parent.limitReqDryRun,
      limitReqLogLevel: pickLogLevel(pick('limit_req_log_level')) ?? parent.limitReqLogLevel,
      gzip: this.gzip(parent.gzip, s, p),
      authBasic: compileAuthBasic(this, parent.authBasic, s, p),
      satisfyAny: s.satisfy !== undefined ? s.satisfy === 'any' : parent.satisfyAny,
      realIp: compileRealIp(this, parent.realIp, s, p),
      expires: s.expires === undefined ? parent.expires : s.expires === 'off' ? undefined : s.expires,
      charsetTypes: s.charset_types === undefined ? parent.charsetTypes : charsetTypes(s.charset_types),
      charset: charsetRuntime(parent, s.charset, s.charset_types),
      absoluteRedirect: pick('absolute_redirect') ?? parent.absoluteRedirect,
      portInRedirect: pick('port_in_redirect') ?? parent.portInRedirect,
      serverNameInRedirect: pick('server_name_in_redirect') ?? parent.serverNameInRedirect,
      etag: pick('etag') ?? parent.etag,
    };
  }

  /** The gzip settings of a level: the parent's object itself unless this level sets one of them. */
  private gzip(parent: GzipRuntime, s: Settings, p: ModelPath): GzipRuntime {
    if (
      s.gzip === undefined &&
      s.gzip_types === undefined &&
      s.gzip_min_length === undefined &&
      s.gzip_comp_level === undefined &&
      s.gzip_vary === undefined &&
      s.gzip_proxied === undefined &&
      s.gzip_http_version === undefined &&
      s.gzip_disable === undefined
    ) {
      return parent;
    }
    let disable = parent.disable;
    let disableMsie6 = parent.disableMsie6;
    if (s.gzip_disable !== undefined) {
      const regexes: RegExp[] = [];
      disableMsie6 = false;
      s.gzip_disable.forEach((source, i) => {
        if (source === 'msie6') {
          disableMsie6 = true;
          return;
        }
        try {
          regexes.push(compileNginxRegex(source, true)); // nginx compiles these caseless
        } catch (err) {
          this.error([...p, 'gzip_disable', i], `invalid regex "${source}": ${(err as Error).message}`);
        }
      });
      disable = regexes;
    }
    const types = s.gzip_types;
    let proxied = parent.proxied;
    if (s.gzip_proxied !== undefined) {
      proxied = 0;
      for (const name of s.gzip_proxied) proxied |= GZIP_PROXIED[name];
    }
    return {
      enabled: s.gzip ?? parent.enabled,
      level: s.gzip_comp_level ?? parent.level,
      minLength: s.gzip_min_length ?? parent.minLength,
      // text/html is always compressed; `*` is any type.
      types: types === undefined ? parent.types : types.includes('*') ? undefined : new NameSet(['text/html', ...types.map((t) => t.toLowerCase())]),
      vary: s.gzip_vary ?? parent.vary,
      proxied,
      http10: s.gzip_http_version !== undefined ? s.gzip_http_version === '1.0' : parent.http10,
      disable,
      disableMsie6,
    };
  }

  private accessRules(p: ModelPath, rules: NonNullable<Settings['access']>): AccessRules | undefined {
    const compiled: { allow: boolean; list: net.BlockList | undefined }[] = [];
    rules.forEach((rule, i) => {
      if (rule.source === 'all') {
        compiled.push({ allow: rule.action === 'allow', list: undefined });
        return;
      }
      const [addr, bits] = rule.source.split('/') as [string, string | undefined];
      const family = net.isIP(addr);
      if (family === 0) return this.error([...p, i], `invalid address "${rule.source}"`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const list = new net.BlockList();
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : +bits;
      if (prefix > (family === 6 ? 128 : 32)) return this.error([...p, i], `invalid mask in "${rule.source}"`);
      list.addSubnet(addr, prefix, type);
      compiled.push({ allow: rule.action === 'allow', list });
    });
    const verdict = (address: string): number => {
      const mapped = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
      const type = net.isIPv6(mapped) ? 'ipv6' : 'ipv4';
      for (const rule of compiled) {
        if (rule.list === undefined || rule.list.check(mapped, type)) return rule.allow ? 1 : -1;
      }
      return 0;
    };
    return { check: (address) => verdict(address) >= 0, verdict };
  }

  private limitConn(p: ModelPath, rules: NonNullable<Settings['limit_conn']>): LimitConnRule[] {
    const out: LimitConnRule[] = [];
    rules.forEach((r, i) => {
      const zone = this.loaded.config.http.limit_conn_zone.find((z) => z.name === r.zone);
      if (zone === undefined) return this.error([...p, i], `zero size shared memory zone "${r.zone}" (no limit_conn_zone declares it)`);
      const key = this.template([...p, i], zone.key);
      if (key === undefined) return;
      out.push({ zone: zone.name, limit: r.number, perClientAddress: zone.key === '$binary_remote_addr' || zone.key === '$remote_addr', key, counts: limitZoneCounts(zone.name) });
    });
    return out;
  }

  private limitReq(p: ModelPath, rules: NonNullable<Settings['limit_req']>): LimitReqRule[] {
    const out: LimitReqRule[] = [];
    rules.forEach((r, i) => {
      const zone = this.loaded.config.http.limit_req_zone.find((z) => z.name === r.zone);
      if (zone === undefined) return this.error([...p, i], `zero size shared memory zone "${r.zone}" (no limit_req_zone declares it)`);
      const key = this.template([...p, i], zone.key);
      if (key === undefined) return;
      out.push({
        zone: this.deps.dryRun === true ? new LimitReqZone(zone.name, zone.rate * 1000, 1) : limitReqZone(zone.name, Math.round(zone.rate * 1000), zone.size),
        key,
        burst: r.burst * 1000,
        delay: r.nodelay ? Infinity : r.delay * 1000,
      });
    });
    return out;
  }

  private errorPages(p: ModelPath, pages: NonNullable<Settings['error_page']>): Map<number, ErrorPageRuntime> {
    const out = new Map<number, ErrorPageRuntime>();
    pages.forEach((page, i) => {
      const uri = this.template([...p, i], page.uri);
      if (uri === undefined) return;
      // nginx: the first error_page naming a code wins.
      for (const code of page.codes) if (!out.has(code)) out.set(code, { uri, response: page.response ?? 0 });
    });
    return out;
  }

  private addHeaders(p: ModelPath, headers: NonNullable<Settings['add_header']>): CompiledAddHeader[] {
    const out: CompiledAddHeader[] = [];
    headers.forEach((h, i) => {
      const value = this.template([...p, i], h.value);
      if (value !== undefined) out.push({ name: h.name, value, always: h.always });
    });
    return out;
  }

  // ------------------------------------------------------------ upstreams

  private compileUpstreams(upstreams: readonly UpstreamBlockConfig[]): void {
    upstreams.forEach((u, i) => {
      const p = ['http', 'upstreams', i];
      if (this.groups.has(u.name)) return this.error([...p, 'name'], `duplicate upstream "${u.name}"`);
      const setup = policySetupFor(u, this.scope);
      if (typeof setup === 'string') return this.error([...p, u.sticky !== undefined && setup.includes('sticky') ? 'sticky' : 'balance'], setup);
      for (const w of setup.warnings) this.warn([...p, u.sticky !== undefined ? 'sticky' : 'name'], w);
      const states: ServerState[] = [];
      const params: UpstreamServerConfig[] = [];
      const members = this.deps.membership?.(u);
      u.servers.forEach((s, j) => {
        const endpoint = parseServerAddress(s.address);
        if (typeof endpoint === 'string') return this.error([...p, 'servers', j], endpoint);
        if (s.backup && (u.balance.method === 'hash' || u.balance.method === 'ip_hash' || u.balance.method === 'random')) {
          return this.error([...p, 'servers', j], `balancing method "${u.balance.method}" does not support backup servers (as in nginx)`);
        }
        if (s.service !== undefined && !s.resolve) return this.error([...p, 'servers', j], 'the "service" parameter requires "resolve" (as in nginx)');
        if (s.slow_start > 0 && !setup.weighted) {
          return this.error([...p, 'servers', j], `"slow_start" cannot be used with "${setup.method}": changing weights would move keys (as in nginx)`);
        }
        if (members !== undefined) return;
        const state = this.deps.registry.obtain(u.name, s.address, endpoint);
        this.serverKeys.add(state.key);
        states.push(state);
        params.push(s);
      });
      for (const m of members ?? []) {
        const state = this.deps.registry.obtain(u.name, m.address, m.endpoint);
        state.source = m.source;
        this.serverKeys.add(state.key);
        states.push(state);
        params.push(m.params);
      }
      if (u.servers.length > 0 && u.servers.every((s) => s.backup)) this.error([...p, 'servers'], `upstream "${u.name}" has only backup servers`);
      const limits = {
        maxIdle: u.keepalive ?? DEFAULT_KEEPALIVE,
        idleTimeoutMs: u.keepalive_timeout,
        maxRequests: u.keepalive_requests === 0 ? Number.MAX_SAFE_INTEGER : u.keepalive_requests,
        maxLifetimeMs: u.keepalive_time,
      };
      const group = new UpstreamGroup(u.name, states, params, limits, setup.factory, false, u);
      group.method = setup.method;
      group.weighted = setup.weighted;
      group.sticky = setup.sticky;
      if (u.retry_budget.percent > 0) group.retryBudget = new RetryBudget(u.retry_budget, u.name);
      group.rampNewServers = this.deps.generation > 1;
      this.groups.set(u.name, group);
    });
  }

  /** nginx makes an implicit upstream for `proxy_pass http://host:port`. */
  private implicitGroup(p: ModelPath, hostPort: string, defaultPort: number): UpstreamGroup | undefined {
    const key = hostPort.includes(':') && !hostPort.endsWith(']') ? hostPort : `${hostPort}:${defaultPort}`;
    const existing = this.groups.get(key);
    if (existing !== undefined) return existing;
    const endpoint = parseServerAddress(hostPort, defaultPort);
    if (typeof endpoint === 'string') {
      this.error(p, endpoint);
      return undefined;
    }
    const state = this.deps.registry.obtain(key, key, endpoint);
    this.serverKeys.add(state.key);
    const params = { address: key, weight: 1, max_fails: 1, fail_timeout: 10_000, backup: false, down: false, max_conns: 0, resolve: false, slow_start: 0, drain: false };
    const limits = { maxIdle: DEFAULT_KEEPALIVE, idleTimeoutMs: 60_000, maxRequests: 1000, maxLifetimeMs: 3_600_000 };
    const group = new UpstreamGroup(key, [state], [params], limits, roundRobin, true, undefined);
    this.groups.set(key, group);
    return group;
  }

  // ------------------------------------------------------------ servers and locations

  private compileServer(s: ServerBlockConfig, p: ModelPath, http: HttpBlockConfig, httpSettings: EffectiveSettings): VirtualServer {
    const settings = this.settings(httpSettings, s, p);
    const locations = this.compileLocations(s.locations, [...p, 'locations'], settings, { http, server: s, chain: [] });
    const named = this.namedLocations(s, p, settings, http);
    let serverReturn: ReturnRuntime | undefined;
    if (s.return !== undefined) serverReturn = this.returnRuntime([...p, 'return'], s.return);
    else if (s.redirect_https === true) serverReturn = { code: 301, text: this.template([...p, 'redirect_https'], 'https://$host$request_uri') };
    const names = s.server_name;
    // ACME HTTP-01 tokens are answered before the locations and before a server-level return.
    const tokenDir = this.acme.challengeDirFor(s);
    return {
      names,
      primaryName: names[0] ?? '',
      settings,
      locations: tokenDir === undefined ? locations : new AcmeChallengeLocations(tokenDir, locations, settings, serverReturn),
      named,
      rewrite: this.rewriteProgram(s.rewrite, [...p, 'rewrite']),
      serverReturn: tokenDir === undefined ? serverReturn : undefined,
      hstsSeconds: Math.floor((s.hsts ?? 0) / 1000),
      http2MaxConcurrentStreams: s.http2_max_concurrent_streams ?? http.http2_max_concurrent_streams ?? 128,
      label: `server ${names[0] ?? '""'}`,
      clientVerify: clientVerifyOf(s, http, (message) => this.error(p, message)),
    };
  }

  /** Variables `set` gives values to (anywhere) join the scope: per request, '' until set. */
  private withSetVariables(http: HttpBlockConfig, maps: VariableScope): VariableScope {
    const names = new Set<string>();
    const walk = (locations: readonly LocationBlockConfig[]): void => {
      for (const l of locations) {
        setVariableNames(l.rewrite, names);
        walk(l.locations);
      }
    };
    for (const server of http.servers) {
      setVariableNames(server.rewrite, names);
      walk(server.locations);
    }
    if (names.size === 0) return maps;
    const scope = new Map(maps);
    for (const name of names) {
      if (maps.has(name)) this.error(['http'], `variable "${name}" is both a map's and set's: give them different names`);
      else if (variableGetter(name) !== undefined) this.error(['http'], `the built-in variable "${name}" cannot be changed with set`);
      else scope.set(name, (ctx) => ctx.userVariable(name));
    }
    return scope;
  }

  /** The rewrite module's directives of a server or location, compiled in order. */
  private rewriteProgram(ops: readonly RewriteOpConfig[] | undefined, p: ModelPath): RewriteRuntimeOp[] | undefined {
    if (ops === undefined || ops.length === 0) return undefined;
    const out: RewriteRuntimeOp[] = [];
    ops.forEach((op, i) => {
      const ip = [...p, i];
      switch (op.op) {
        case 'set': {
          const value = this.template(ip, op.value);
          if (value !== undefined) out.push({ kind: 'set', name: op.variable, value });
          return;
        }
        case 'break':
          out.push({ kind: 'break' });
          return;
        case 'return': {
          const ret = this.returnRuntime(ip, op);
          if (ret !== undefined) out.push({ kind: 'return', ret });
          return;
        }
        case 'rewrite': {
          let regex: RegExp;
          try {
            regex = compileNginxRegex(op.regex, false);
          } catch (err) {
            return this.error(ip, `invalid regular expression "${op.regex}": ${(err as Error).message}`);
          }
          const replacement = this.template(ip, op.replacement);
          if (replacement === undefined) return;
          const redirect = op.flag === 'redirect' || op.flag === 'permanent' || /^(https?:\/\/|\$scheme)/.test(op.replacement);
          out.push({ kind: 'rewrite', regex, replacement, flag: op.flag, redirect });
          return;
        }
        case 'if': {
          const c = op.condition;
          const subject = this.template(ip, c.subject);
          const operand = c.operand === undefined || c.operator?.includes('~') ? undefined : this.template(ip, c.operand);
          let regex: RegExp | undefined;
          if (c.operator?.includes('~')) {
            try {
              regex = compileNginxRegex(c.operand!, c.operator.endsWith('*'));
            } catch (err) {
              return this.error(ip, `invalid regular expression "${c.operand}": ${(err as Error).message}`);
            }
          }
          if (subject === undefined || (c.operand !== undefined && regex === undefined && operand === undefined)) return;
          out.push({ kind: 'if', test: compileCondition(c, subject, operand, regex), ops: this.rewriteProgram(op.ops, [...ip, 'ops']) ?? [] });
          return;
        }
      }
    });
    return out;
  }

  /**
   * `location @name` blocks (server level only, as nginx): reached by
   * try_files. Like nginx, one cannot nest locations, use alias, or give
   * proxy_pass a URI part.
   */
  private namedLocations(s: ServerBlockConfig, p: ModelPath, settings: EffectiveSettings, http: HttpBlockConfig): Map<string, LocationRuntime> {
    const named = new Map<string, LocationRuntime>();
    s.locations.forEach((loc, i) => {
      if (!loc.location.startsWith('@')) return;
      const lp = [...p, 'locations', i];
      if (named.has(loc.location)) return this.error([...lp, 'location'], `duplicate location "${loc.location}"`);
      if (loc.locations.length > 0) return this.error([...lp, 'locations', 0, 'location'], `location "${loc.locations[0]!.location}" cannot be inside the named location "${loc.location}"`);
      if (loc.alias !== undefined) return this.error([...lp, 'alias'], `"alias" cannot be used inside the named location "${loc.location}"`);
      // Matched like a regex location for what proxy_pass may say (no URI part).
      const match = { kind: 'regex' as const, pattern: loc.location };
      const lsettings = this.settings(settings, loc, lp);
      const chain = [loc];
      const action = this.action(loc, lp, match, chain, { http, server: s });
      if (action === undefined) return;
      const rewrite = this.rewriteProgram(loc.rewrite, [...lp, 'rewrite']);
      named.set(loc.location, { label: `location ${loc.location}`, match, settings: lsettings, action, tryFiles: this.tryFiles(loc, lp, action, chain, { http, server: s }), rewrite });
    });
    return named;
  }

  /** try_files of a location; it applies before a static or proxy action (a `return` answers first, as in nginx). */
  private tryFiles(loc: LocationBlockConfig, p: ModelPath, action: Action, chain: readonly LocationBlockConfig[], scope: { http: HttpBlockConfig; server: ServerBlockConfig }): TryFilesRuntime | undefined {
    const args = loc.try_files;
    if (args === undefined || action.kind === 'return') return undefined;
    const tp = [...p, 'try_files'];
    const root = inherit(chain, scope, 'root');
    const files = action.kind === 'static' ? action.files : { directory: root === undefined ? this.resolvePath('html') : this.resolvePath(root), alias: undefined };
    const candidates: Template[] = [];
    for (const a of args.slice(0, -1)) {
      const t = this.template(tp, a);
      if (t === undefined) return undefined;
      candidates.push(t);
    }
    const last = args[args.length - 1]!;
    if (last.startsWith('=')) return { candidates, files, fallback: { code: Number(last.slice(1)) } };
    const uri = this.template(tp, last);
    if (uri === undefined) return undefined;
    if (last.startsWith('@') && !scope.server.locations.some((l) => l.location === last)) {
      this.error(tp, `no location "${last}" in this server (try_files)`);
      return undefined;
    }
    return { candidates, files, fallback: { uri } };
  }

  private compileLocations(
    locations: readonly LocationBlockConfig[],
    p: ModelPath,
    parent: EffectiveSettings,
    scope: { http: HttpBlockConfig; server: ServerBlockConfig; chain: LocationBlockConfig[] },
  ): LocationMatcher<LocationRuntime> {
    const compiled: MatchableLocation<LocationRuntime>[] = [];
    const seen = new Set<string>();
    locations.forEach((loc, i) => {
      if (loc.location.startsWith('@')) return; // named: compiled by namedLocations
      const lp = [...p, i];
      const match = parseLocationMatch(loc.location);
      if ('error' in match) return this.error([...lp, 'location'], match.error);
      const key = `${match.kind === 'prefix_no_regex' ? 'prefix' : match.kind} ${match.pattern}`;
      if (seen.has(key)) return this.error([...lp, 'location'], `duplicate location "${match.pattern}"`);
      seen.add(key);
      const outer = scope.chain[scope.chain.length - 1];
      if (outer !== undefined && (match.kind === 'prefix' || match.kind === 'prefix_no_regex' || match.kind === 'exact')) {
        const outerMatch = parseLocationMatch(outer.location);
        if (!('error' in outerMatch) && (outerMatch.kind === 'prefix' || outerMatch.kind === 'prefix_no_regex') && !match.pattern.startsWith(outerMatch.pattern)) {
          return this.error([...lp, 'location'], `location "${match.pattern}" is outside location "${outerMatch.pattern}"`);
        }
      }
      let regex: RegExp | undefined;
      if (match.kind === 'regex' || match.kind === 'regex_caseless') {
        try {
          regex = compileNginxRegex(match.pattern, match.kind === 'regex_caseless');
        } catch (err) {
          return this.error([...lp, 'location'], `invalid regular expression "${match.pattern}": ${(err as Error).message}`);
        }
      }
      const settings = this.settings(parent, loc, lp);
      const chain = [...scope.chain, loc];
      const action = this.action(loc, lp, match, chain, scope);
      const children = loc.locations.length > 0 ? this.compileLocations(loc.locations, [...lp, 'locations'], settings, { ...scope, chain }) : undefined;
      if (action === undefined) return;
      const tryFiles = this.tryFiles(loc, lp, action, chain, scope);
      const rewrite = this.rewriteProgram(loc.rewrite, [...lp, 'rewrite']);
      const root = inherit(chain, scope, 'root');
      const filesAfterBreak = rewrite !== undefined && action.kind === 'return' ? { directory: this.resolvePath(root ?? 'html'), alias: undefined } : undefined;
      compiled.push({ match, regex, children, value: { label: `location ${loc.location}`, match, settings, action, tryFiles, rewrite, filesAfterBreak, internal: loc.internal === true } });
    });
    return new LocationMatcher(compiled);
  }

  private action(
    loc: LocationBlockConfig,
    p: ModelPath,
    match: ReturnType<typeof parseLocationMatch> & { kind: string; pattern: string },
    chain: readonly LocationBlockConfig[],
    scope: { http: HttpBlockConfig; server: ServerBlockConfig },
  ): Action | undefined {
    if (loc.return !== undefined) {
      const ret = this.returnRuntime([...p, 'return'], loc.return);
      return ret === undefined ? undefined : { kind: 'return', ret };
    }
    if (loc.stub_status === true) return { kind: 'stub_status' };
    if (loc.proxy_pass !== undefined) {
      const proxy = this.proxyRuntime(loc, p, match, chain, scope);
      return proxy === undefined ? undefined : { kind: 'proxy', proxy };
    }
    if (loc.alias !== undefined) {
      if (match.kind === 'regex' || match.kind === 'regex_caseless') {
        this.error([...p, 'alias'], 'alias in a regex location is not supported');
        return undefined;
      }
      return { kind: 'static', files: { directory: this.resolvePath(loc.alias), alias: { prefix: match.pattern } } };
    }
    const root = inherit(chain, scope, 'root');
    return { kind: 'static', files: { directory: root === undefined ? this.resolvePath('html') : this.resolvePath(root), alias: undefined } };
  }

  private returnRuntime(p: ModelPath, r: ReturnConfig): ReturnRuntime | undefined {
    const text = r.text === undefined ? undefined : this.template(p, r.text);
    if (r.text !== undefined && text === undefined) return undefined;
    return { code: r.code, text };
  }

  private proxyRuntime(
    loc: LocationBlockConfig,
    p: ModelPath,
    match: { kind: string; pattern: string },
    chain: readonly LocationBlockConfig[],
    scope: { http: HttpBlockConfig; server: ServerBlockConfig },
  ): ProxyRuntime | undefined {
    const pp = [...p, 'proxy_pass'];
    const url = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(loc.proxy_pass!);
    if (url === null) {
      this.error(pp, `invalid URL prefix in "${loc.proxy_pass}"`);
      return undefined;
    }
    if (loc.proxy_pass!.includes('$')) {
      this.error(pp, 'variables in proxy_pass are not supported');
      return undefined;
    }
    const scheme = url[1]!.toLowerCase() as 'http' | 'https';
    const hostPort = url[2]!;
    const uri = url[3];
    const named = this.groups.get(hostPort);
    if (named === undefined && !/[:.\]]/.test(hostPort) && !/^localhost$/i.test(hostPort)) {
      // nginx: "host not found in upstream". A single-label name without a port is almost always a misspelt upstream.
      this.error(pp, `host not found in upstream "${hostPort}" (no upstream block has that name; for a host name, give the port: http://${hostPort}:80)`);
      return undefined;
    }
    const group = named !== undefined && !named.implicit ? named : this.implicitGroup(pp, hostPort, scheme === 'https' ? 443 : 80);
    if (group === undefined) return undefined;
    const usedAs = this.groupSchemes.get(group);
    if (usedAs !== undefined && usedAs !== scheme) {
      this.error(pp, `upstream "${group.name}" is used with both http:// and https://; give each scheme its own upstream block`);
      return undefined;
    }
    this.groupSchemes.set(group, scheme);
    const get = <K extends keyof Settings>(key: K): Settings[K] => inherit(chain, scope, key);
    if (scheme === 'https') {
      const tls = this.upstreamTls.compile(group, proxyPassHost(hostPort), get);
      if (typeof tls === 'string') {
        this.error(pp, tls);
        return undefined;
      }
      group.tls = tls;
    }
    let uriReplacement: ProxyRuntime['uriReplacement'];
    if (uri !== undefined) {
      if (match.kind === 'regex' || match.kind === 'regex_caseless') {
        this.error(pp, '"proxy_pass" cannot have URI part in location given by regular expression');
        return undefined;
      }
      uriReplacement = { prefix: match.pattern, replacement: uri };
    }
    const headerOps = this.headerOps(chain, scope, p);
    const nextUpstream = (get('proxy_next_upstream') ?? DEFAULT_NEXT_UPSTREAM).reduce((bits, v) => bits | NEXT_UPSTREAM_BITS[v]!, 0);
    const skip = new Set(HOP_BY_HOP_REQUEST);
    for (const op of headerOps) skip.add(op.lower);
    const hide = new Set([...HOP_BY_HOP_RESPONSE, ...NGINX_HIDDEN_RESPONSE, ...(get('proxy_hide_header') ?? []).map((h) => h.toLowerCase())]);
    for (const h of get('proxy_pass_header') ?? []) hide.delete(h.toLowerCase());
    const colon = hostPort.lastIndexOf(':');
    return {
      group,
      scheme,
      proxyHost: hostPort,
      proxyPort: colon > 0 && !hostPort.endsWith(']') ? hostPort.slice(colon + 1) : scheme === 'https' ? '443' : '80',
      uriReplacement,
      headerOps,
      skipRequestHeaders: new NameSet(skip),
      hideResponseHeaders: new NameSet(hide),
      nextUpstream,
      nextUpstreamTries: get('proxy_next_upstream_tries') ?? 0,
      nextUpstreamTimeoutMs: get('proxy_next_upstream_timeout') ?? 0,
      connectTimeoutMs: get('proxy_connect_timeout') ?? 60_000,
      readTimeoutMs: get('proxy_read_timeout') ?? 60_000,
      sendTimeoutMs: get('proxy_send_timeout') ?? 60_000,
      httpVersion: get('proxy_http_version') ?? '1.1',
      requestBuffering: get('proxy_request_buffering') ?? true,
      buffering: get('proxy_buffering') ?? true,
      redirectRewrite:
        (get('proxy_redirect') ?? 'default') === 'default' && uriReplacement !== undefined
          ? { from: `${scheme}://${hostPort}${uriReplacement.replacement}`, to: uriReplacement.prefix }
          : undefined,
    };
  }

  /**
   * proxy_set_header as nginx merges it: the innermost level that sets any
   * proxy_set_header wins as a whole; nginx's defaults (Host $proxy_host)
   * apply to names it does not set. An empty value removes the header.
   */
  private headerOps(chain: readonly LocationBlockConfig[], scope: { http: HttpBlockConfig; server: ServerBlockConfig }, p: ModelPath): HeaderOp[] {
    const levels: { headers: Settings['proxy_set_header']; path: ModelPath }[] = [];
    const serverIndex = scope.http.servers.indexOf(scope.server);
    levels.push({ headers: scope.http.proxy_set_header, path: ['http'] });
    levels.push({ headers: scope.server.proxy_set_header, path: ['http', 'servers', serverIndex] });
    for (let i = 0; i < chain.length; i++) levels.push({ headers: chain[i]!.proxy_set_header, path: p });
    let chosen: { headers: NonNullable<Settings['proxy_set_header']>; path: ModelPath } | undefined;
    for (const level of levels) if (level.headers !== undefined) chosen = { headers: level.headers, path: level.path };
    const ops: HeaderOp[] = [];
    const named = new Set<string>();
    for (const [i, h] of (chosen?.headers ?? []).entries()) {
      const lower = h.name.toLowerCase();
      named.add(lower);
      const value = this.template([...chosen!.path, 'proxy_set_header', i], h.value);
      if (value !== undefined) ops.push({ name: h.name, lower, value });
    }
    if (!named.has('host')) ops.unshift({ name: 'Host', lower: 'host', value: compileTemplate('$proxy_host') });
    return ops;
  }

  // ------------------------------------------------------------ listeners and TLS

  private compileListeners(serverConfigs: readonly ServerBlockConfig[], servers: readonly VirtualServer[]): ListenerSpec[] {
    interface Group {
      host: string;
      port: number;
      ssl: boolean;
      http2: boolean;
      backlog: number | undefined;
      ipv6Only: boolean;
      entries: { names: readonly string[]; server: VirtualServer; index: number }[];
      defaultServer: VirtualServer | undefined;
      tls: TlsServerConfig[];
    }
    const byKey = new Map<string, Group>();
    serverConfigs.forEach((sc, i) => {
      const server = servers[i]!;
      sc.listen.forEach((l, j) => {
        const p = ['http', 'servers', i, 'listen', j];
        const host = l.address === '*' ? '0.0.0.0' : l.address.replace(/^\[(.*)\]$/, '$1');
        if (host !== '0.0.0.0' && host !== 'localhost' && net.isIP(host) === 0) return this.error(p, `invalid listen address "${l.address}"`);
        const key = `${host.includes(':') ? `[${host}]` : host}:${l.port}`;
        let g = byKey.get(key);
        if (g === undefined) {
          // HTTP/2 is offered on TLS listeners unless a server says `http2 off` (nginx needs `http2 on`).
          // nginx binds IPv6 sockets with IPV6_V6ONLY on unless `ipv6only=off`, so `listen 80; listen [::]:80;` is two sockets, not a conflict.
          const ipv6Only = host.includes(':') && l.ipv6only !== false;
          g = { host, port: l.port, ssl: l.ssl, http2: l.ssl && (l.http2 || sc.http2 !== false), backlog: l.backlog, ipv6Only, entries: [], defaultServer: undefined, tls: [] };
          byKey.set(key, g);
        } else if (g.ssl !== l.ssl) {
          return this.error(p, `listen ${key}: "ssl" must be set on every server that listens on it or on none`);
        }
        if (l.default_server) {
          if (g.defaultServer !== undefined) return this.error(p, `a duplicate default server for ${key}`);
          g.defaultServer = server;
        }
        if (g.entries.some((e) => e.index === i)) return this.error(p, `duplicate listen ${key}`);
        g.entries.push({ names: sc.server_name, server, index: i });
        if (l.ssl) {
          const tls = this.tlsConfig(sc, ['http', 'servers', i], l.default_server);
          if (tls !== undefined) g.tls.push(tls);
        }
      });
    });
    return [...byKey.entries()].map(([key, g]) => ({
      key,
      host: g.host,
      port: g.port,
      ssl: g.ssl,
      http2: g.http2,
      backlog: g.backlog,
      ipv6Only: g.ipv6Only,
      servers: new ServerNameMatcher(g.entries, g.defaultServer ?? g.entries[0]!.server),
      tls: withoutResumptionWhereClientsAreVerified(g.tls),
    }));
  }

  private tlsConfig(sc: ServerBlockConfig, p: ModelPath, isDefault: boolean): TlsServerConfig | undefined {
    const http = this.loaded.config.http;
    const acme = this.acme.specFor(sc);
    const certs = acme !== undefined ? [] : (sc.ssl_certificate ?? http.ssl_certificate ?? []);
    const keys = acme !== undefined ? [] : (sc.ssl_certificate_key ?? http.ssl_certificate_key ?? []);
    if (certs.length === 0 && acme === undefined) {
      this.warn(p, `server ${sc.server_name[0] ?? ''} listens with ssl but has no ssl_certificate: a temporary self-signed certificate is served`);
    }
    if (certs.length !== keys.length) {
      this.error(p, 'every "ssl_certificate" needs an "ssl_certificate_key"');
      return undefined;
    }
    const certificates: TlsServerConfig['certificates'] =
      acme !== undefined
        ? acme.keyTypes.map((keyType) => ({ cert: certificateFiles(acme, keyType).cert, key: certificateFiles(acme, keyType).key, acme: true }))
        : certs.map((c, i) => ({ cert: this.resolvePath(c), key: this.resolvePath(keys[i]!) }));
    for (const [i, c] of certificates.entries()) {
      if (c.acme === true) continue;
      for (const [file, kind] of [
        [c.cert, 'ssl_certificate'],
        [c.key, 'ssl_certificate_key'],
      ] as const) {
        const problem = checkReadable(file);
        if (problem === 'missing') this.warn([...p, kind, i], `${kind} "${file}" does not exist yet: a temporary self-signed certificate is served until it appears`);
        else if (problem !== undefined) this.error([...p, kind, i], `cannot read ${kind} "${file}": ${problem}`);
      }
      // Like `nginx -t`, load the pair: a file that exists must be a usable certificate and key.
      const invalid = checkCertificatePair(c.cert, c.key);
      if (invalid !== undefined) this.error([...p, 'ssl_certificate', i], invalid);
    }
    const get = <K extends keyof Settings>(key: K): Settings[K] => sc[key] ?? http[key];
    return {
      names: sc.server_name,
      certificates,
      protocols: get('ssl_protocols') ?? ['TLSv1.2', 'TLSv1.3'],
      ciphers: get('ssl_ciphers'),
      preferServerCiphers: get('ssl_prefer_server_ciphers') ?? false,
      sessionCache: get('ssl_session_cache'),
      sessionTimeoutMs: get('ssl_session_timeout') ?? 300_000,
      // nginx's default is on; fulcrum rotates the ticket keys hourly (no long-lived static key).
      sessionTickets: get('ssl_session_tickets') ?? true,
      ecdhCurve: get('ssl_ecdh_curve'),
      isDefault,
      stapling: get('ssl_stapling') ?? false,
      acme,
      ...clientCaOf(sc, http, (f) => this.resolvePath(f), (message) => this.error(p, message)),
    };
  }
}

/** Parses an existing certificate/key pair; returns what is wrong with it, or undefined (also when a file is missing). */
function checkCertificatePair(certFile: string, keyFile: string): string | undefined {
  let certText: Buffer;
  let keyText: Buffer;
  let reading = certFile;
  try {
    certText = fs.readFileSync(certFile);
    reading = keyFile;
    keyText = fs.readFileSync(keyFile);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A missing file (a warning) or a permission problem was reported above.
    if (code === 'ENOENT' || code === 'EACCES') return undefined;
    return `cannot read "${reading}": ${code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`;
  }
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certText);
  } catch (err) {
    return `ssl_certificate "${certFile}" is not a valid PEM certificate (${(err as Error).message})`;
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch (err) {
    return `ssl_certificate_key "${keyFile}" is not a valid PEM private key (${(err as Error).message})`;
  }
  if (!cert.checkPrivateKey(key)) return `ssl_certificate_key "${keyFile}" does not match ssl_certificate "${certFile}"`;
  return undefined;
}

/** Request counters of limit_conn zones, by zone name: they outlive reloads, as requests in flight do. */
const LIMIT_ZONE_COUNTS = new Map<string, Map<string, number>>();

/** nginx's levels as fulcrum's log has them (notice is info). */
function pickLogLevel(level: 'info' | 'notice' | 'warn' | 'error' | undefined): 'info' | 'warn' | 'error' | undefined {
  return level === 'notice' ? 'info' : level;
}

function limitZoneCounts(zone: string): Map<string, number> {
  let counts = LIMIT_ZONE_COUNTS.get(zone);
  if (counts === undefined) LIMIT_ZONE_COUNTS.set(zone, (counts = new Map()));
  return counts;
}

function checkReadable(file: string): string | undefined {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'missing' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  }
}

/** A setting from the innermost level of location chain -> server -> http that sets it. */
function inherit<K extends keyof Settings>(chain: readonly LocationBlockConfig[], scope: { http: HttpBlockConfig; server: ServerBlockConfig }, key: K): Settings[K] {
  for (let i = chain.length - 1; i >= 0; i--) {
    const v = chain[i]![key];
    if (v !== undefined) return v;
  }
  return scope.server[key] ?? scope.http[key];
}

const NEXT_UPSTREAM_BITS: Record<string, number> = {
  error: NextUpstream.Error,
  timeout: NextUpstream.Timeout,
  invalid_header: NextUpstream.InvalidHeader,
  http_500: NextUpstream.Http500,
  http_502: NextUpstream.Http502,
  http_503: NextUpstream.Http503,
  http_504: NextUpstream.Http504,
  http_403: NextUpstream.Http403,
  http_404: NextUpstream.Http404,
  http_429: NextUpstream.Http429,
  non_idempotent: NextUpstream.NonIdempotent,
  off: 0,
};

/** nginx's built-in defaults, in runtime units. */
const BASE_SETTINGS: EffectiveSettings = {
  accessLog: [],
  clientMaxBodySize: 1024 * 1024,
  clientHeaderTimeoutMs: 60_000,
  clientBodyTimeoutMs: 60_000,
  clientBodyBufferSize: 16 * 1024,
  keepaliveTimeoutMs: 75_000,
  keepaliveRequests: 1000,
  sendTimeoutMs: 60_000,
  headLimits: { maxLineBytes: 8192, maxHeadBytes: 32768, maxHeaders: 100 },
  chunkedTransferEncoding: true,
  underscoresInHeaders: false,
  ignoreInvalidHeaders: true,
  mergeSlashes: true,
  serverTokens: true,
  defaultType: 'text/plain',
  index: ['index.html'],
  access: undefined,
  addHeaders: [],
  errorPages: new Map(),
  interceptErrors: false,
  retryIdempotencyKey: false,
  debugHeader: false,
  limitConn: [],
  limitConnStatus: 503,
  limitReq: [],
  limitReqStatus: 503,
  limitReqDryRun: false,
  limitReqLogLevel: 'error',
  authBasic: undefined,
  satisfyAny: false,
  realIp: undefined,
  expires: undefined,
  charset: undefined,
  charsetTypes: DEFAULT_CHARSET_TYPES,
  absoluteRedirect: true,
  portInRedirect: true,
  serverNameInRedirect: false,
  etag: true,
  gzip: {
    enabled: false,
    level: 1,
    minLength: 20,
    types: new NameSet(['text/html']),
    vary: false,
    proxied: GzipProxied.Off,
    http10: false,
    disable: [],
    disableMsie6: false,
  },
};

const GZIP_PROXIED: Record<NonNullable<Settings['gzip_proxied']>[number], GzipProxied> = {
  off: GzipProxied.Off,
  expired: GzipProxied.Expired,
  'no-cache': GzipProxied.NoCache,
  'no-store': GzipProxied.NoStore,
  private: GzipProxied.Private,
  no_last_modified: GzipProxied.NoLastModified,
  no_etag: GzipProxied.NoEtag,
  auth: GzipProxied.Auth,
  any: GzipProxied.Any,
};

/**
 * Compiles a loaded configuration. Throws ConfigError with every problem
 * found; on success returns the table and the warnings.
 */
export function compile(loaded: LoadedConfig, deps: CompileDeps): CompileResult {
  const c = new Compiler(loaded, deps);
  const table = c.compile();
  if (c.errors.length > 0) throw new ConfigError(c.errors);
  return {
    table,
    warnings: [...loaded.warnings, ...c.warnings],
    activate() {
      for (const group of c.groups.values()) group.activate();
      deps.registry.adoptGroups(c.groups.values());
      deps.registry.retainOnly(c.serverKeys);
    },
  };
}

export type { Config };
