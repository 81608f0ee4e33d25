/**
 * The one configuration model. Both front ends (YAML/JSON and nginx syntax)
 * produce plain data of this shape; the schema validates it (unknown keys are
 * errors), normalises units (times to ms, sizes to bytes) and is the source of
 * the TypeScript types used everywhere else (`Config`, `ServerBlock`, ...).
 *
 * Keys are nginx directive names wherever nginx has one, so the reference in
 * the README serves both formats.
 */
// zod 4's package also ships the zod 3 API at 'zod/v3'. It is used because it
// costs each process ~11 MiB less RSS than zod 4 (measured: 43 vs 54 MiB for a
// bare Node that imports it), and every worker loads the schema. Note zod 3's
// `.default(x)` parses x: defaults are written in input form ('30s', not 30000).
import { z } from 'zod/v3';
import { parseDuration, parseSize } from './units.js';

// ---------------------------------------------------------------- primitives

/** nginx time: "30s", "1h", "300" (seconds) or a number of seconds. Output: ms. */
export const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid time value "${v}"` });
    return z.NEVER;
  }
  return ms;
});

/** nginx size: "1m", "8k", "1024" or a number of bytes. Output: bytes. */
export const Size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid size value "${v}"` });
    return z.NEVER;
  }
  return n;
});

/** on/off flags accept booleans too in YAML. */
export const Flag = z.union([z.boolean(), z.enum(['on', 'off'])]).transform((v) => v === true || v === 'on');

const PositiveInt = z.number().int().positive();
const NonNegativeInt = z.number().int().nonnegative();

// ---------------------------------------------------------------- logging

export const AccessLogTarget = z.strictObject({
  /** File path, or "stderr"/"stdout". */
  path: z.string().min(1),
  /** A log_format name; "combined" (nginx's default) and "json" are built in. */
  format: z.string().default('combined'),
});

export const LogFormat = z.strictObject({
  format: z.string(),
  /** How variables are escaped: nginx's "default", "json" or "none". */
  escape: z.enum(['default', 'json', 'none']).default('default'),
});

export const ErrorLog = z.strictObject({
  path: z.string().default('stderr'),
  level: z.enum(['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg']).default('info'),
});

// ---------------------------------------------------------------- access control

export const AccessRule = z.strictObject({
  action: z.enum(['allow', 'deny']),
  /** "all", an address, or a CIDR block (IPv4 or IPv6). */
  source: z.string().min(1),
});

// ---------------------------------------------------------------- return / headers

export const ReturnAction = z.strictObject({
  /** Status code 0-999; 301/302/303/307/308 take a URL. */
  code: z.number().int().min(0).max(999),
  /** URL (for redirects) or body text; may contain variables. */
  text: z.string().optional(),
});

/**
 * nginx's rewrite module, run in order at the server level before location
 * matching and at the location level after it: `rewrite`, `set`, `break`,
 * `return` and `if (condition) { ... }` holding those (src/runtime/rewrite.ts).
 */
export type RewriteOpConfig =
  | { op: 'rewrite'; regex: string; replacement: string; flag?: 'last' | 'break' | 'redirect' | 'permanent' | undefined }
  | { op: 'set'; variable: string; value: string }
  | { op: 'break' }
  | { op: 'return'; code: number; text?: string | undefined }
  | { op: 'if'; condition: IfCondition; ops: RewriteOpConfig[] };

export interface IfCondition {
  /** A variable, or a string with variables ("$host$uri"), or a file path for the -f/-d/-e/-x tests. */
  subject: string;
  operator?: '=' | '!=' | '~' | '~*' | '!~' | '!~*' | '-f' | '!-f' | '-d' | '!-d' | '-e' | '!-e' | '-x' | '!-x' | undefined;
  operand?: string | undefined;
}

const IfConditionSchema = z.strictObject({
  subject: z.string(),
  operator: z.enum(['=', '!=', '~', '~*', '!~', '!~*', '-f', '!-f', '-d', '!-d', '-e', '!-e', '-x', '!-x']).optional(),
  operand: z.string().optional(),
});

export const RewriteOp: z.ZodType<RewriteOpConfig> = z.lazy(() =>
  z.discriminatedUnion('op', [
    z.strictObject({ op: z.literal('rewrite'), regex: z.string().min(1), replacement: z.string(), flag: z.enum(['last', 'break', 'redirect', 'permanent']).optional() }),
    z.strictObject({ op: z.literal('set'), variable: z.string().regex(/^[A-Za-z0-9_]+$/), value: z.string() }),
    z.strictObject({ op: z.literal('break') }),
    z.strictObject({ op: z.literal('return'), code: z.number().int().min(0).max(999), text: z.string().optional() }),
    z.strictObject({ op: z.literal('if'), condition: IfConditionSchema, ops: z.array(RewriteOp) }),
  ]),
) as z.ZodType<RewriteOpConfig>;

export const HeaderSetting = z.strictObject({
  name: z.string().min(1),
  /** May contain variables; an empty value removes the header (nginx). */
  value: z.string(),
});

export const AddHeader = z.strictObject({
  name: z.string().min(1),
  value: z.string(),
  /** Add to every response, not only 2xx/3xx (nginx's `always`). */
  always: z.boolean().default(false),
});

// ---------------------------------------------------------------- TLS

export const SslSettings = {
  ssl_certificate: z.array(z.string().min(1)).optional(),
  ssl_certificate_key: z.array(z.string().min(1)).optional(),
  ssl_protocols: z.array(z.enum(['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])).optional(),
  ssl_ciphers: z.string().optional(),
  ssl_prefer_server_ciphers: Flag.optional(),
  /** nginx syntax kept as text: "off", "none", "builtin[:size]", "shared:NAME:SIZE". */
  ssl_session_cache: z.string().optional(),
  ssl_session_timeout: Duration.optional(),
  ssl_session_tickets: Flag.optional(),
  ssl_ecdh_curve: z.string().optional(),
  ssl_dhparam: z.string().optional(),
  ssl_stapling: Flag.optional(),
  // Client certificates (src/tls/client-verify.ts); server level.
  ssl_client_certificate: z.string().min(1).optional(),
  ssl_verify_client: z.enum(['on', 'off', 'optional', 'optional_no_ca']).optional(),
  ssl_verify_depth: NonNegativeInt.optional(),
  ssl_trusted_certificate: z.string().min(1).optional(),
  // TLS to upstreams (src/upstream/tls-settings.ts); http, server or location level.
  proxy_ssl_verify: Flag.optional(),
  proxy_ssl_trusted_certificate: z.string().min(1).optional(),
  proxy_ssl_verify_depth: NonNegativeInt.optional(),
  proxy_ssl_server_name: Flag.optional(),
  proxy_ssl_name: z.string().min(1).optional(),
  proxy_ssl_protocols: z.array(z.enum(['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])).optional(),
  proxy_ssl_ciphers: z.string().optional(),
  proxy_ssl_certificate: z.string().min(1).optional(),
  proxy_ssl_certificate_key: z.string().min(1).optional(),
  proxy_ssl_session_reuse: Flag.optional(),
  // fulcrum's built-in ACME client (src/tls/acme/); http or server level.
  /** server: obtain and renew certificates for this server's names. */
  acme: Flag.optional(),
  acme_email: z.string().min(1).optional(),
  /** A directory URL, or letsencrypt (default), letsencrypt_staging, zerossl, google, google_staging, buypass, buypass_staging. */
  acme_directory: z.string().min(1).optional(),
  /** External Account Binding (ZeroSSL, Google, private CAs): key identifier and base64url HMAC key. */
  acme_eab_kid: z.string().min(1).optional(),
  acme_eab_hmac_key: z.string().min(1).optional(),
  /** Challenge types in order of preference; a failed order tries the next. Default http-01 tls-alpn-01. */
  acme_challenge: z.array(z.enum(['http-01', 'tls-alpn-01'])).min(1).optional(),
  /** ecdsa (P-256, default) and/or rsa (2048): one certificate each, served side by side. */
  acme_key_type: z.array(z.enum(['ecdsa', 'rsa'])).min(1).optional(),
  /** Renew when this much validity remains; default a third of the certificate's lifetime. */
  acme_renew_before: Duration.optional(),
  /** Backoff after a failed order: first delay, doubling up to max. Default 2m, 12h. */
  acme_retry: z.strictObject({ min: Duration, max: Duration.optional() }).optional(),
  /** http: directory for accounts, certificates and challenge files; default "acme" beside the config file. */
  acme_storage: z.string().min(1).optional(),
  /** PEM file of CA roots to trust for the ACME directory's HTTPS (a private CA). */
  acme_ca_root: z.string().min(1).optional(),
};

// ---------------------------------------------------------------- inheritable settings

/**
 * Settings that may appear at http, server and location level. As in nginx,
 * a level that does not set one inherits it from the level above; list-valued
 * ones (proxy_set_header, add_header, access rules) are inherited only when
 * the level sets none of them.
 */
export const InheritableSettings = {
  access_log: z.union([z.literal('off'), z.array(AccessLogTarget)]).optional(),
  client_max_body_size: Size.optional(),
  client_header_timeout: Duration.optional(),
  client_body_timeout: Duration.optional(),
  client_header_buffer_size: Size.optional(),
  large_client_header_buffers: z.strictObject({ number: PositiveInt, size: Size }).optional(),
  client_body_buffer_size: Size.optional(),
  keepalive_timeout: Duration.optional(),
  keepalive_requests: NonNegativeInt.optional(),
  send_timeout: Duration.optional(),
  chunked_transfer_encoding: Flag.optional(),
  underscores_in_headers: Flag.optional(),
  ignore_invalid_headers: Flag.optional(),
  merge_slashes: Flag.optional(),
  server_tokens: Flag.optional(),
  default_type: z.string().optional(),
  root: z.string().optional(),
  index: z.array(z.string()).optional(),
  access: z.array(AccessRule).optional(),
  add_header: z.array(AddHeader).optional(),
  /**
   * nginx's error_page: for these codes (of responses fulcrum makes itself),
   * serve `uri` instead (a local URI, with variables), or redirect to it (a
   * URL). `response`: the status sent; absent = the original code, -1 = the
   * status the error page's own handler gives (nginx's bare "=").
   */
  error_page: z
    .array(z.strictObject({ codes: z.array(z.number().int().min(300).max(599)).min(1), response: z.number().int().min(-1).max(599).optional(), uri: z.string().min(1) }))
    .optional(),
  proxy_intercept_errors: Flag.optional(),
  proxy_connect_timeout: Duration.optional(),
  proxy_read_timeout: Duration.optional(),
  proxy_send_timeout: Duration.optional(),
  proxy_buffering: Flag.optional(),
  proxy_request_buffering: Flag.optional(),
  proxy_http_version: z.enum(['1.0', '1.1']).optional(),
  proxy_set_header: z.array(HeaderSetting).optional(),
  proxy_hide_header: z.array(z.string()).optional(),
  proxy_pass_header: z.array(z.string()).optional(),
  proxy_next_upstream: z
    .array(z.enum(['error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429', 'non_idempotent', 'off']))
    .optional(),
  proxy_next_upstream_tries: NonNegativeInt.optional(),
  proxy_next_upstream_timeout: Duration.optional(),
  proxy_redirect: z.union([z.literal('off'), z.literal('default')]).optional(),
  /** fulcrum: retry a non-idempotent request carrying an Idempotency-Key header. */
  retry_idempotency_key: Flag.optional(),
  /** fulcrum: add X-Fulcrum-Upstream (servers tried) and X-Fulcrum-Decision (why; src/proxy/decision.ts) to proxied responses. */
  debug_header: Flag.optional(),
  /** nginx's limit_conn: a zone declared by limit_conn_zone and the most connections per key. */
  limit_conn: z.array(z.strictObject({ zone: z.string().min(1), number: PositiveInt })).optional(),
  limit_conn_status: z.number().int().min(400).max(599).optional(),
  /** nginx's limit_req: a zone declared by limit_req_zone, with its burst and delay (src/runtime/limit-req.ts). */
  limit_req: z
    .array(z.strictObject({ zone: z.string().min(1), burst: z.number().int().min(0).default(0), nodelay: z.boolean().default(false), delay: z.number().int().min(0).default(0) }))
    .optional(),
  limit_req_status: z.number().int().min(400).max(599).optional(),
  limit_req_dry_run: Flag.optional(),
  limit_req_log_level: z.enum(['info', 'notice', 'warn', 'error']).optional(),
  /** nginx's ngx_http_gzip_module. */
  gzip: Flag.optional(),
  gzip_types: z.array(z.string().min(1)).optional(),
  gzip_min_length: Size.optional(),
  gzip_comp_level: z.number().int().min(1).max(9).optional(),
  gzip_vary: Flag.optional(),
  gzip_proxied: z.array(z.enum(['off', 'expired', 'no-cache', 'no-store', 'private', 'no_last_modified', 'no_etag', 'auth', 'any'])).min(1).optional(),
  gzip_http_version: z.enum(['1.0', '1.1']).optional(),
  gzip_disable: z.array(z.string().min(1)).optional(),
  /** nginx's ngx_http_auth_basic_module: the realm (with variables), or "off"; and the htpasswd file (src/proxy/auth-basic.ts). */
  auth_basic: z.string().optional(),
  auth_basic_user_file: z.string().min(1).optional(),
  /** nginx's satisfy: "all" (allow/deny and auth_basic must both let the request in) or "any". */
  satisfy: z.enum(['all', 'any']).optional(),
  /** nginx's ngx_http_realip_module (src/net/real-ip.ts). */
  set_real_ip_from: z.array(z.string().min(1)).optional(),
  real_ip_header: z.string().min(1).optional(),
  real_ip_recursive: Flag.optional(),
  /** nginx's expires, parsed (src/config/nginx/header-directives.ts). */
  expires: z.union([z.literal('off'), z.strictObject({ mode: z.enum(['access', 'modified', 'daily', 'epoch', 'max']), seconds: z.number().int() })]).optional(),
  /** nginx's charset: a name, or "off". */
  charset: z.string().min(1).optional(),
  charset_types: z.array(z.string().min(1)).optional(),
  absolute_redirect: Flag.optional(),
  port_in_redirect: Flag.optional(),
  server_name_in_redirect: Flag.optional(),
  etag: Flag.optional(),
  ...SslSettings,
};

// ---------------------------------------------------------------- locations

/** nginx location syntax: "/prefix", "= /exact", "^~ /prefix", "~ regex", "~* regex". */
export const LocationMatch = z.string().min(1);

export interface LocationInput {
  location: string;
  [key: string]: unknown;
}

const LocationFields = {
  location: LocationMatch,
  proxy_pass: z.string().optional(),
  return: ReturnAction.optional(),
  alias: z.string().optional(),
  /** nginx's try_files: files (with variables; "name/" is a directory) tried in order, then the last: a URI, @name or =code. */
  try_files: z.array(z.string().min(1)).min(2).optional(),
  rewrite: z.array(RewriteOp).optional(),
  /** nginx's stub_status: the location answers with the connection counts. */
  stub_status: z.boolean().optional(),
  /** nginx's internal: only internal redirects reach the location; a client's request for it gets 404. */
  internal: z.boolean().optional(),
  ...InheritableSettings,
};

export const LocationBlock: z.ZodType<LocationOutput, z.ZodTypeDef, LocationInputShape> = z.lazy(() =>
  z.strictObject({
    ...LocationFields,
    locations: z.array(LocationBlock).default([]),
  }),
) as unknown as z.ZodType<LocationOutput, z.ZodTypeDef, LocationInputShape>;

type LocationFieldsOutput = z.output<z.ZodObject<typeof LocationFields>>;
type LocationFieldsInput = z.input<z.ZodObject<typeof LocationFields>>;
export type LocationOutput = LocationFieldsOutput & { locations: LocationOutput[] };
export type LocationInputShape = LocationFieldsInput & { locations?: LocationInputShape[] | undefined };

// ---------------------------------------------------------------- servers (virtual hosts)

export const Listen = z.strictObject({
  /** Address to bind; "*" or omitted means all IPv4 addresses (nginx's default). "[::]" for IPv6. */
  address: z.string().default('*'),
  port: z.number().int().min(0).max(65535),
  ssl: z.boolean().default(false),
  http2: z.boolean().default(false),
  default_server: z.boolean().default(false),
  backlog: PositiveInt.optional(),
  ipv6only: z.boolean().optional(),
});

export const ServerBlock = z.strictObject({
  listen: z.array(Listen).default([{ address: '*', port: 80, ssl: false, http2: false, default_server: false }]),
  server_name: z.array(z.string()).default(['']),
  return: ReturnAction.optional(),
  http2: Flag.optional(),
  /** fulcrum: answer plain HTTP with a redirect to HTTPS (the seed's `return 301 https://$host$request_uri`). */
  redirect_https: Flag.optional(),
  /** fulcrum: Strict-Transport-Security max-age on HTTPS responses; 0 = off. */
  hsts: Duration.optional(),
  http2_max_concurrent_streams: PositiveInt.optional(),
  rewrite: z.array(RewriteOp).optional(),
  locations: z.array(LocationBlock).default([]),
  ...InheritableSettings,
});

// ---------------------------------------------------------------- upstreams

export const UpstreamServer = z.strictObject({
  /** host:port, an IP address (port 80 by default, as nginx), or unix:/path. */
  address: z.string().min(1),
  weight: PositiveInt.default(1),
  max_fails: NonNegativeInt.default(1),
  fail_timeout: Duration.default('10s'),
  backup: z.boolean().default(false),
  down: z.boolean().default(false),
  /** 0 = unlimited. */
  max_conns: NonNegativeInt.default(0),
  /** Re-resolve the host name while running, honouring the DNS TTL (nginx's `resolve`). */
  resolve: z.boolean().default(false),
  /** DNS SRV service name (nginx's `service=`). */
  service: z.string().optional(),
  /** Ramp the weight up over this time after the server recovers. */
  slow_start: Duration.default('0s'),
  /** No new requests except sticky ones. */
  drain: z.boolean().default(false),
});

export const BalanceMethod = z.strictObject({
  method: z.enum(['round_robin', 'least_conn', 'ip_hash', 'hash', 'random', 'least_time']).default('round_robin'),
  /** hash: the key, with variables. */
  key: z.string().optional(),
  /** hash: ketama consistent hashing. */
  consistent: z.boolean().default(false),
  /** random: pick two and choose between them. */
  two: z.boolean().default(false),
  /** random two: how to choose between the two (default least_conn). */
  choose: z.enum(['least_conn', 'least_time']).optional(),
  /** least_time (and random two least_time): what latency to compare (nginx Plus: header, last_byte). */
  measure: z.enum(['header', 'last_byte']).default('header'),
  /** least_time: nginx Plus's `inflight`; accepted: requests in flight always count in fulcrum. */
  inflight: z.boolean().default(false),
});

/** sticky cookie NAME [expires=] [domain=] [path=] [httponly] [secure] [samesite=] [secret=] (nginx Plus, plus secret). */
export const StickyCookie = z.strictObject({
  cookie: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'invalid cookie name'),
  /** How long the browser keeps the cookie; "max" = nginx's far-future date; absent = a session cookie. */
  expires: z.union([z.literal('max'), Duration]).optional(),
  domain: z.string().min(1).optional(),
  /** Default "/". */
  path: z.string().min(1).optional(),
  httponly: z.boolean().default(false),
  secure: z.boolean().default(false),
  samesite: z.enum(['strict', 'lax', 'none']).optional(),
  /** Key material for the signed cookie value: text, or "env:NAME". See README (sticky sessions). */
  secret: z.string().min(1).optional(),
});

/** An expected status: "200", "200-399", or negated "!500", "!500-599". */
const StatusMatch = z.string().regex(/^!?[1-5][0-9]{2}(-[1-5][0-9]{2})?$/, 'expected a status code or range such as 200-399 or !500');

export const HealthCheck = z.strictObject({
  type: z.enum(['http', 'tcp']).default('http'),
  interval: Duration.default('5s'),
  /** Each probe is delayed by a random time up to this (nginx Plus `jitter=`); the first one always starts at a random point of the first interval. */
  jitter: Duration.default('0s'),
  timeout: Duration.default('2s'),
  /** Consecutive passed probes that bring an unhealthy server back (nginx Plus `passes=`). */
  rise: PositiveInt.default(2),
  /** Consecutive failed probes that take a server out (nginx Plus `fails=`). */
  fall: PositiveInt.default(3),
  uri: z.string().startsWith('/').default('/'),
  method: z.string().regex(/^[A-Z]+$/, 'invalid method').default('GET'),
  /** Expected status codes: the status must match one of the positive items and none of the negated ones. */
  status: z.array(StatusMatch).min(1).default(['200-399']),
  /** A regular expression the body (its first 64 KiB) must match. */
  body: z
    .string()
    .refine((r) => {
      try {
        new RegExp(r);
        return true;
      } catch {
        return false;
      }
    }, 'invalid regular expression')
    .optional(),
  /** Host header of HTTP probes; default the server's address. */
  host: z.string().optional(),
  /** Probe this port instead of the server's. */
  port: z.number().int().min(1).max(65535).optional(),
  /** New servers get no traffic until their first probe passes (nginx Plus `mandatory`). */
  mandatory: z.boolean().default(false),
});

/** retry_budget PERCENT [min=N] [window=TIME]. */
export const RetryBudget = z
  .union([
    z.number(),
    z.strictObject({
      percent: z.number(),
      /** Retries per second always allowed, whatever the share (Linkerd's minRetriesPerSecond). */
      min: NonNegativeInt.default(3),
      window: Duration.default('10s'),
    }),
  ])
  .transform((v) => (typeof v === 'number' ? { percent: v, min: 3, window: 10_000 } : v))
  .refine((v) => v.percent >= 0 && v.percent <= 1000, 'retry_budget must be a percentage from 0 to 1000')
  .refine((v) => v.window >= 1000, 'the retry_budget window must be at least 1s');

export const UpstreamBlock = z.strictObject({
  name: z.string().min(1),
  /** At least one, unless `servers_file` lists them. */
  servers: z.array(UpstreamServer).default([]),
  /** fulcrum: a JSON or YAML file listing more servers (same keys as `servers`), watched and applied while running. */
  servers_file: z.string().min(1).optional(),
  balance: BalanceMethod.default({}),
  /** Idle keep-alive connections kept to this upstream's servers; 0 disables reuse. */
  keepalive: NonNegativeInt.optional(),
  keepalive_timeout: Duration.default('60s'),
  keepalive_requests: NonNegativeInt.default(1000),
  keepalive_time: Duration.default('1h'),
  health_check: HealthCheck.optional(),
  /** Share of healthy servers below which all servers are used (Envoy's panic threshold); 0 = off. */
  panic_threshold: z.number().min(0).max(100).default(0),
  /** Retries may add at most this percentage of the requests of the last window; 0 = no budget (nginx). */
  retry_budget: RetryBudget.default(0),
  /** Session persistence by cookie, on top of the balancing method. */
  sticky: StickyCookie.optional(),
}).superRefine((u, ctx) => {
  if (u.servers.length === 0 && u.servers_file === undefined) {
    ctx.addIssue({ code: 'custom', path: ['servers'], message: `upstream "${u.name}" needs at least one server (or a servers_file)` });
  }
});

// ---------------------------------------------------------------- top level

/**
 * `map SOURCE $variable { ... }`. Entry keys are matched as nginx does:
 * strings ignoring case, "~regex" / "~*regex" in order; with `hostnames`,
 * "*.example.com", ".example.com" and "mail.*" masks too.
 */
export const MapBlock = z.strictObject({
  /** The string to match, with variables: "$http_upgrade". */
  source: z.string(),
  /** The variable defined, without '$'. */
  variable: z.string().regex(/^[A-Za-z0-9_]+$/, 'a map variable name is letters, digits and "_"'),
  hostnames: z.boolean().default(false),
  /** The value when nothing matches; '' when not given. */
  default: z.string().default(''),
  entries: z.array(z.strictObject({ key: z.string(), value: z.string() })).default([]),
});
export type MapBlockConfig = z.infer<typeof MapBlock>;

export const HttpBlock = z.strictObject({
  log_format: z.record(z.string(), LogFormat).default({}),
  upstreams: z.array(UpstreamBlock).default([]),
  servers: z.array(ServerBlock).default([]),
  http2_max_concurrent_streams: PositiveInt.optional(),
  resolver: z.array(z.string()).optional(),
  resolver_valid: Duration.optional(),
  resolver_timeout: Duration.default('30s'),
  /** nginx's limit_conn_zone: a named counter keyed by a variable ($binary_remote_addr...). */
  limit_conn_zone: z.array(z.strictObject({ name: z.string().min(1), key: z.string().min(1), size: Size.optional() })).default([]),
  /** nginx's limit_req_zone: `rate` in requests per second (10r/m is 0.1666...). */
  limit_req_zone: z.array(z.strictObject({ name: z.string().min(1), key: z.string().min(1), size: Size, rate: z.number().positive() })).default([]),
  /** nginx's map: variables whose value is chosen by matching another string (src/variables/map.ts). */
  map: z.array(MapBlock).default([]),
  ...InheritableSettings,
});

export const AdminSettings = z.strictObject({
  /** "127.0.0.1:9090", a bare port (bound to 127.0.0.1), "*:9090" (every IPv4 address) or "[::1]:9090". */
  listen: z
    .string()
    .regex(/^(?:(?:\[[0-9A-Fa-f:.]+\]|[0-9.]+|\*|localhost):)?[0-9]{1,5}$/, 'admin listen must be address:port or a port (the address an IP, "*" or localhost)')
    .default('127.0.0.1:9090'),
  /** Bearer token required for every change; read from the environment when it starts with "env:". */
  token: z.string().optional(),
});

export const ConfigSchema = z.strictObject({
  worker_processes: z.union([z.literal('auto'), PositiveInt]).default('auto'),
  worker_connections: PositiveInt.default(512),
  worker_shutdown_timeout: Duration.default('30s'),
  /**
   * fulcrum: after a reload, WebSockets and responses still streaming on a
   * route the reload kept are left alone for at most this long; 0 = no limit.
   */
  reload_stream_timeout: Duration.default('0s'),
  /** fulcrum: reload when the configuration file (or a file it includes) changes. */
  watch_config: Flag.default(false),
  error_log: ErrorLog.default({}),
  pid: z.string().optional(),
  admin: AdminSettings.optional(),
  http: HttpBlock.default({}),
});

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type HttpBlockConfig = z.output<typeof HttpBlock>;
export type ServerBlockConfig = z.output<typeof ServerBlock>;
export type LocationBlockConfig = LocationOutput;
export type UpstreamBlockConfig = z.output<typeof UpstreamBlock>;
export type UpstreamServerConfig = z.output<typeof UpstreamServer>;
export type ListenConfig = z.output<typeof Listen>;
export type ReturnConfig = z.output<typeof ReturnAction>;
export type AccessLogConfig = z.output<typeof AccessLogTarget>;
export type HealthCheckConfig = z.output<typeof HealthCheck>;
export type BalanceConfig = z.output<typeof BalanceMethod>;
export type StickyCookieConfig = z.output<typeof StickyCookie>;
export type RetryBudgetConfig = z.output<typeof RetryBudget>;

/** The settings object shape shared by http, server and location levels. */
export type Settings = z.output<z.ZodObject<typeof InheritableSettings>>;
export const SETTING_KEYS = Object.keys(InheritableSettings) as (keyof Settings)[];
