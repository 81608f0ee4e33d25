/**
 * The one configuration model. Both front ends (YAML/JSON and nginx syntax)
 * produce plain data of this shape; the schema validates it (unknown keys are
 * errors), normalises units (times to ms, sizes to bytes) and is the source of
 * the TypeScript types used everywhere else (`Config`, `ServerBlock`, ...).
 *
 * Keys are nginx directive names wherever nginx has one, so the reference in
 * the README serves both formats.
 */
import { z } from 'zod';
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
  /** fulcrum: add an X-Fulcrum-Debug header explaining the balancing decision. */
  debug_header: Flag.optional(),
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
  ...InheritableSettings,
};

export const LocationBlock: z.ZodType<LocationOutput, LocationInputShape> = z.lazy(() =>
  z.strictObject({
    ...LocationFields,
    locations: z.array(LocationBlock).default([]),
  }),
) as unknown as z.ZodType<LocationOutput, LocationInputShape>;

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
  locations: z.array(LocationBlock).default([]),
  ...InheritableSettings,
});

// ---------------------------------------------------------------- upstreams

export const UpstreamServer = z.strictObject({
  /** host:port, an IP address (port 80 by default, as nginx), or unix:/path. */
  address: z.string().min(1),
  weight: PositiveInt.default(1),
  max_fails: NonNegativeInt.default(1),
  fail_timeout: Duration.default(10_000),
  backup: z.boolean().default(false),
  down: z.boolean().default(false),
  /** 0 = unlimited. */
  max_conns: NonNegativeInt.default(0),
  /** Re-resolve the host name while running, honouring the DNS TTL (nginx's `resolve`). */
  resolve: z.boolean().default(false),
  /** DNS SRV service name (nginx's `service=`). */
  service: z.string().optional(),
  /** Ramp the weight up over this time after the server recovers. */
  slow_start: Duration.default(0),
  /** No new requests except sticky ones. */
  drain: z.boolean().default(false),
});

export const BalanceMethod = z.strictObject({
  method: z.enum(['round_robin', 'least_conn', 'ip_hash', 'hash', 'random', 'least_time', 'sticky']).default('round_robin'),
  /** hash: the key, with variables. */
  key: z.string().optional(),
  /** hash: ketama consistent hashing. */
  consistent: z.boolean().default(false),
  /** random: pick two and choose between them. */
  two: z.boolean().default(false),
  /** random two: how to choose between the two. */
  choose: z.enum(['least_conn', 'least_time']).optional(),
  /** least_time: what latency to compare (nginx: header, last_byte). */
  measure: z.enum(['header', 'last_byte']).default('header'),
  /** sticky cookie: cookie attributes. */
  cookie: z
    .strictObject({
      name: z.string().min(1),
      expires: Duration.optional(),
      path: z.string().optional(),
      domain: z.string().optional(),
      httponly: z.boolean().default(false),
      secure: z.boolean().default(false),
    })
    .optional(),
});

export const HealthCheck = z.strictObject({
  type: z.enum(['http', 'tcp']).default('http'),
  interval: Duration.default(5000),
  timeout: Duration.default(2000),
  rise: PositiveInt.default(2),
  fall: PositiveInt.default(3),
  uri: z.string().default('/'),
  method: z.string().default('GET'),
  /** Expected status codes as ranges, e.g. ["200-399"]. */
  status: z.array(z.string()).default(['200-399']),
  /** A regular expression the body must match. */
  body: z.string().optional(),
  host: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

export const UpstreamBlock = z.strictObject({
  name: z.string().min(1),
  servers: z.array(UpstreamServer).min(1),
  balance: BalanceMethod.prefault({}),
  /** Idle keep-alive connections kept to this upstream's servers; 0 disables reuse. */
  keepalive: NonNegativeInt.optional(),
  keepalive_timeout: Duration.default(60_000),
  keepalive_requests: NonNegativeInt.default(1000),
  keepalive_time: Duration.default(3_600_000),
  health_check: HealthCheck.optional(),
  /** Share of healthy servers below which all servers are used (Envoy's panic threshold); 0 = off. */
  panic_threshold: z.number().min(0).max(100).default(0),
  /** Retries may add at most this percentage of extra requests; 0 = no budget. */
  retry_budget: z.number().min(0).max(100).default(0),
});

// ---------------------------------------------------------------- top level

export const HttpBlock = z.strictObject({
  log_format: z.record(z.string(), LogFormat).default({}),
  upstreams: z.array(UpstreamBlock).default([]),
  servers: z.array(ServerBlock).default([]),
  resolver: z.array(z.string()).optional(),
  resolver_valid: Duration.optional(),
  resolver_timeout: Duration.default(30_000),
  ...InheritableSettings,
});

export const AdminSettings = z.strictObject({
  listen: z.string().default('127.0.0.1:9090'),
  /** Bearer token required for every change; read from the environment when it starts with "env:". */
  token: z.string().optional(),
});

export const ConfigSchema = z.strictObject({
  worker_processes: z.union([z.literal('auto'), PositiveInt]).default(1),
  worker_connections: PositiveInt.default(512),
  worker_shutdown_timeout: Duration.default(30_000),
  error_log: ErrorLog.prefault({}),
  pid: z.string().optional(),
  admin: AdminSettings.optional(),
  http: HttpBlock.prefault({}),
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

/** The settings object shape shared by http, server and location levels. */
export type Settings = z.output<z.ZodObject<typeof InheritableSettings>>;
export const SETTING_KEYS = Object.keys(InheritableSettings) as (keyof Settings)[];
