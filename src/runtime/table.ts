/**
 * The runtime table: one immutable, compiled generation of the
 * configuration. Listeners look up virtual servers and locations here; a
 * reload compiles a whole new table and swaps it with one assignment
 * (generations.ts). Requests keep the location they were routed to, so in-
 * flight requests finish on the generation they started on.
 */
import type { Config } from '../config/schema.js';
import type { NameSet } from '../http/name-set.js';
import type { HeadLimits } from '../http/request-head.js';
import type { AccessLogTarget } from '../log/access-log.js';
import type { LocationMatcher, LocationPattern } from '../router/locations.js';
import type { ServerNameMatcher } from '../router/server-names.js';
import type { AcmeServerSpec } from '../tls/acme/spec.js';
import type { ClientVerify } from '../tls/client-verify.js';
import type { UpstreamGroup } from '../upstream/group.js';
import type { Template } from '../variables/template.js';
import type { AuthBasicRuntime } from '../proxy/auth-basic.js';
import type { RealIpRuntime } from '../net/real-ip.js';
import type { CharsetRuntime, ExpiresRuntime } from '../proxy/header-filters.js';

/** Settings after http -> server -> location inheritance, in runtime units. */
export interface EffectiveSettings {
  accessLog: readonly AccessLogTarget[];
  clientMaxBodySize: number;
  clientHeaderTimeoutMs: number;
  clientBodyTimeoutMs: number;
  clientBodyBufferSize: number;
  keepaliveTimeoutMs: number;
  keepaliveRequests: number;
  sendTimeoutMs: number;
  headLimits: HeadLimits;
  chunkedTransferEncoding: boolean;
  underscoresInHeaders: boolean;
  ignoreInvalidHeaders: boolean;
  mergeSlashes: boolean;
  serverTokens: boolean;
  defaultType: string;
  index: readonly string[];
  access: AccessRules | undefined;
  addHeaders: readonly CompiledAddHeader[];
  /** error_page by status code (inherited as a whole, like nginx: a level with its own error_page keeps none of its parent's). */
  errorPages: ReadonlyMap<number, ErrorPageRuntime>;
  /** proxy_intercept_errors: upstream responses with an error_page code get that page instead. */
  interceptErrors: boolean;
  retryIdempotencyKey: boolean;
  debugHeader: boolean;
  /** limit_conn rules in force here (inherited as a list, like nginx). */
  limitConn: readonly LimitConnRule[];
  limitConnStatus: number;
  /** limit_req rules in force here (inherited as a list, like nginx). */
  limitReq: readonly LimitReqRule[];
  limitReqStatus: number;
  /** limit_req_dry_run: rules are counted but never refuse or delay. */
  limitReqDryRun: boolean;
  /** Where refusals are logged (nginx's limit_req_log_level, default error); delays one level lower. */
  limitReqLogLevel: 'info' | 'warn' | 'error';
  /** nginx's expires; undefined = off (src/proxy/header-filters.ts). */
  expires: ExpiresRuntime | undefined;
  /** nginx's charset with charset_types; undefined = off. */
  charset: CharsetRuntime | undefined;
  /** charset_types, inherited on its own (undefined = `*`). */
  charsetTypes: ReadonlySet<string> | undefined;
  /** absolute_redirect, port_in_redirect, server_name_in_redirect (src/handlers/return.ts absoluteLocation). */
  absoluteRedirect: boolean;
  portInRedirect: boolean;
  serverNameInRedirect: boolean;
  /** etag: static files get an ETag (nginx's "mtime-size" in hex). */
  etag: boolean;
  /** ngx_http_gzip_module's settings; `gzip.enabled` is the only thing read per request when it is off. */
  gzip: GzipRuntime;
  /** auth_basic and auth_basic_user_file (src/proxy/auth-basic.ts); undefined while no level sets them. */
  authBasic: AuthBasicRuntime | undefined;
  /** `satisfy any`: allow/deny or auth_basic may let a request in. */
  satisfyAny: boolean;
  /** set_real_ip_from, real_ip_header, real_ip_recursive (src/net/real-ip.ts); undefined while no level sets them. */
  realIp: RealIpRuntime | undefined;
}

/** gzip_proxied flags (nginx's NGX_HTTP_GZIP_PROXIED_*). */
export const enum GzipProxied {
  Off = 1,
  Expired = 2,
  NoCache = 4,
  NoStore = 8,
  Private = 16,
  NoLastModified = 32,
  NoEtag = 64,
  Auth = 128,
  Any = 256,
}

export interface GzipRuntime {
  enabled: boolean;
  /** gzip_comp_level, 1..9. */
  level: number;
  /** gzip_min_length in bytes, compared with a known Content-Length. */
  minLength: number;
  /** Lowercase MIME types compressed (text/html always among them); undefined for `gzip_types *`. */
  types: NameSet | undefined;
  vary: boolean;
  /** GzipProxied bits. */
  proxied: number;
  /** gzip_http_version 1.0: HTTP/1.0 requests are compressed too. */
  http10: boolean;
  /** gzip_disable regexes (case-insensitive, as nginx compiles them), tried on User-Agent. */
  disable: readonly RegExp[];
  /** gzip_disable "msie6". */
  disableMsie6: boolean;
}

export type { LimitReqRule } from './limit-req.js';
import type { RewriteRuntimeOp } from './rewrite.js';
import type { LimitReqRule } from './limit-req.js';

/** One error_page target. */
export interface ErrorPageRuntime {
  /** A local URI ("/50x.html", served by the location it matches) or a URL (redirected to). */
  uri: Template;
  /** The status sent: 0 = the original code, -1 = what the error page's handler answers, else this code. */
  response: number;
}

/**
 * One limit_conn rule. Keyed by the client address, it counts the client's
 * open connections (so connections still sending their head count too, which
 * is what stops slowloris from one address); keyed by anything else it counts
 * requests in progress, as nginx does. Counts are per worker process.
 */
export interface LimitConnRule {
  zone: string;
  limit: number;
  /** The key is $binary_remote_addr or $remote_addr. */
  perClientAddress: boolean;
  key: Template;
  /** Requests in progress per key value (other keys); shared by every rule on this zone. */
  counts: Map<string, number>;
}

export interface CompiledAddHeader {
  name: string;
  value: Template;
  always: boolean;
}

export interface AccessRules {
  /** true = allowed. Rules are checked in order; the first match decides. */
  check(address: string): boolean;
  /** The first matching rule: 1 allow, -1 deny, 0 none matched (what `satisfy any` needs). */
  verdict(address: string): number;
}

/** Bits of proxy_next_upstream. */
export const enum NextUpstream {
  Error = 1,
  Timeout = 2,
  InvalidHeader = 4,
  Http500 = 8,
  Http502 = 16,
  Http503 = 32,
  Http504 = 64,
  Http403 = 128,
  Http404 = 256,
  Http429 = 512,
  NonIdempotent = 1024,
}

export interface HeaderOp {
  /** As configured (case kept for the wire). */
  name: string;
  lower: string;
  value: Template;
}

export interface ProxyRuntime {
  group: UpstreamGroup;
  scheme: 'http' | 'https';
  /** $proxy_host: the host[:port] written in proxy_pass. */
  proxyHost: string;
  proxyPort: string;
  /** When proxy_pass has a URI part: the location prefix it replaces and the replacement. */
  uriReplacement: { prefix: string; replacement: string } | undefined;
  /** Headers fulcrum sets (proxy_set_header plus nginx's defaults), in order. */
  headerOps: readonly HeaderOp[];
  /** Lowercase client header names not forwarded: hop-by-hop, framing, and those proxy_set_header overrides. */
  skipRequestHeaders: NameSet;
  /** Lowercase upstream response header names not passed to the client. */
  hideResponseHeaders: NameSet;
  nextUpstream: number;
  nextUpstreamTries: number;
  nextUpstreamTimeoutMs: number;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  httpVersion: '1.0' | '1.1';
  requestBuffering: boolean;
  buffering: boolean;
  /**
   * nginx's `proxy_redirect default`: a Location or Refresh header starting
   * with the proxy_pass URL is rewritten to start with the location prefix.
   */
  redirectRewrite: { from: string; to: string } | undefined;
}

export interface ReturnRuntime {
  code: number;
  text: Template | undefined;
}

export interface StaticRuntime {
  /** Directory the URI is appended to (root), or that replaces the location prefix (alias). */
  directory: string;
  alias: { prefix: string } | undefined;
}

export type Action =
  | { kind: 'proxy'; proxy: ProxyRuntime }
  | { kind: 'return'; ret: ReturnRuntime }
  | { kind: 'static'; files: StaticRuntime }
  /** nginx's stub_status (src/handlers/stub-status.ts). */
  | { kind: 'stub_status' };

export interface LocationRuntime {
  /** For logs and the debug header: "location /api". */
  readonly label: string;
  readonly match: LocationPattern;
  readonly settings: EffectiveSettings;
  readonly action: Action;
  /** try_files: checked before the action runs. */
  readonly tryFiles?: TryFilesRuntime;
  /** nginx's `internal`: only a rewritten URI or an internal redirect may land here; a client's URI gets 404. */
  readonly internal?: boolean;
  /** The location's rewrite-module directives, run once it is chosen. */
  readonly rewrite?: readonly RewriteRuntimeOp[];
  /**
   * For a `return` location with rewrite directives: the files under its root,
   * served when a `break` stops the rewrite module before its `return` (as
   * nginx does: `return` is one of the rewrite module's directives).
   */
  readonly filesAfterBreak?: StaticRuntime;
}

/** nginx's try_files: the first candidate that exists is served; else the fallback. */
export interface TryFilesRuntime {
  /** Under the location's root (or alias); a candidate ending in "/" must be a directory. */
  readonly candidates: readonly Template[];
  readonly files: StaticRuntime;
  /** An internal redirect to a URI (with variables) or a named location ("@name"), or an error code. */
  readonly fallback: { uri: Template; code?: undefined } | { uri?: undefined; code: number };
}

export interface VirtualServer {
  readonly names: readonly string[];
  /** $server_name: the first name. */
  readonly primaryName: string;
  readonly settings: EffectiveSettings;
  readonly locations: LocationMatcher<LocationRuntime>;
  /** The server's rewrite-module directives, run before location matching. */
  readonly rewrite: readonly RewriteRuntimeOp[] | undefined;
  /** `location @name`: reached only by try_files and error_page. */
  readonly named: ReadonlyMap<string, LocationRuntime>;
  /** A server-level `return` or `redirect_https`, applied before location matching. */
  readonly serverReturn: ReturnRuntime | undefined;
  /** HSTS max-age in seconds, 0 = none. */
  readonly hstsSeconds: number;
  /** http2_max_concurrent_streams (nginx's default 128), taken from a listener's default server as in nginx. */
  readonly http2MaxConcurrentStreams: number;
  /** ssl_verify_client other than off (src/tls/client-verify.ts). */
  readonly clientVerify?: ClientVerify | undefined;
  /** Location used when nothing matches (nginx answers 404). */
  readonly label: string;
}

export interface TlsServerConfig {
  names: readonly string[];
  /** Certificate/key file pairs; `acme`: fulcrum obtains these files itself (src/tls/acme/). */
  certificates: readonly { cert: string; key: string; acme?: boolean }[];
  protocols: readonly string[];
  ciphers: string | undefined;
  preferServerCiphers: boolean;
  sessionCache: string | undefined;
  sessionTimeoutMs: number;
  sessionTickets: boolean;
  ecdhCurve: string | undefined;
  isDefault: boolean;
  /** ssl_stapling: staple OCSP responses (src/tls/ocsp.ts). */
  stapling?: boolean;
  /** `acme on`: what to obtain for this server (src/tls/acme/spec.ts). */
  acme?: AcmeServerSpec | undefined;
  /** ssl_verify_client other than off: clients are asked for a certificate. */
  verifyClient?: boolean;
  /** ssl_client_certificate (and ssl_trusted_certificate): CA certificates that verify clients. */
  clientCaFiles?: readonly string[];
}

export interface ListenerSpec {
  /** "host:port" as bound. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly ssl: boolean;
  readonly http2: boolean;
  readonly backlog: number | undefined;
  /** IPV6_V6ONLY for an IPv6 address (nginx's default, `ipv6only=off` turns it off). */
  readonly ipv6Only: boolean;
  /** Virtual servers on this socket, by name. */
  readonly servers: ServerNameMatcher<VirtualServer>;
  /** TLS settings per virtual server on this socket (SNI). */
  readonly tls: readonly TlsServerConfig[];
}

export interface RuntimeTable {
  readonly generation: number;
  readonly config: Config;
  readonly listeners: readonly ListenerSpec[];
  readonly upstreams: ReadonlyMap<string, UpstreamGroup>;
  readonly workerConnections: number;
  readonly shutdownTimeoutMs: number;
  readonly baseDir: string;
}
