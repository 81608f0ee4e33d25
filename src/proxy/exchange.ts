/**
 * One request/response exchange, from routing to the access-log line.
 *
 * The phases, and where a retry is allowed (nginx's proxy_next_upstream
 * rules, written down once here):
 *
 *   route -> pick server -> connect -> send request -> receive response head
 *         -> stream body -> log
 *
 *   - connect failed or timed out: retry on the next server (any method: the
 *     request was not sent);
 *   - request sent, then error/timeout/invalid head or a status listed in
 *     proxy_next_upstream: retry only if nothing was sent to the client yet,
 *     the method is idempotent (not POST, LOCK, PATCH) or `non_idempotent`
 *     is set (or, with retry_idempotency_key, the request carries an
 *     Idempotency-Key), and the request body can still be replayed: fulcrum
 *     keeps the first client_body_buffer_size bytes; once a streamed body
 *     goes past that, the request is never retried;
 *   - a reused keep-alive connection that the upstream closed before any
 *     response byte (the keep-alive race): an idempotent request is resent
 *     once on a fresh connection to the same server, not counted as a
 *     failure or a try; a non-idempotent one gets 502, never a replay;
 *   - once the response head went to the client: never. A failure then
 *     closes the client connection so the truncation is visible.
 *
 * The exchange is a state machine driven by callbacks from the downstream
 * (client) and the UpstreamConnection; it allocates no closures per request.
 */
import * as fs from 'node:fs';
import { LAST_CHUNK } from '../http/chunked.js';
import { NameSet } from '../http/name-set.js';
import type { RequestHead } from '../http/request-head.js';
import type { ResponseHead } from '../http/response-head.js';
import { turnEpochMs, turnNow } from '../net/turn-clock.js';
import { flushTurnWrites, writeAtEndOfTurn } from '../net/turn-writes.js';
import { reasonPhrase, statusHasNoBody } from '../http/status.js';
import { noteFailure, noteSelected, noteSuccess } from '../health/passive.js';
import type { Tried } from '../balancer/policy.js';
import { absoluteLocation, serveReturn } from '../handlers/return.js';
import { serveStubStatus } from '../handlers/stub-status.js';
import { applyCharset, applyExpires, headersFilterApplies } from './header-filters.js';
import { fileFor, serveStatic } from '../handlers/static-files.js';
import { normalizePath } from '../router/normalize.js';
import { hostWithoutPort } from '../router/server-names.js';
import { DOUBLE_ZERO } from '../runtime/double-zero.js';
import { processStats } from '../runtime/stats.js';
import { log } from '../log/error-log.js';
import { checkLimitReq } from '../runtime/limit-req.js';
import { RewriteOutcome, runRewrites } from '../runtime/rewrite.js';
import { NextUpstream, type EffectiveSettings, type ErrorPageRuntime, type GzipRuntime, type ReturnRuntime, type TryFilesRuntime, type LimitConnRule, type LocationRuntime, type ProxyRuntime, type VirtualServer } from '../runtime/table.js';
import { UpstreamConnection, UpstreamFailure, type UpstreamUser } from '../upstream/connection.js';
import { decisionHeader } from './decision.js';
import type { ServerState } from '../upstream/server-state.js';
import type { VariableContext } from '../variables/context.js';
import { ClientCertRefusal, checkClientCertificate, refusalMessage, refusalPage, type ClientVerify } from '../tls/client-verify.js';
import type { TLSSocket } from 'node:tls';
import { BodyWrite, type Downstream, type HeaderList } from './downstream.js';
import { errorPage } from './error-pages.js';
import { GzipDownstream, GzipVerdict, gzipVerdict, type ResponseHeaderLookup } from './gzip.js';
import { buildUpstreamHead, upstreamUri } from './request-builder.js';
import { nextRequestId } from './request-id.js';
import { startTunnel } from './tunnel.js';
import { authenticated, challenge, remoteUser, type AuthBasicRuntime } from './auth-basic.js';
import { realAddress, type RealIpRuntime } from '../net/real-ip.js';

const enum Phase {
  Routing,
  /** Waiting for an upstream connection to be established. */
  Connecting,
  /** Request sent (or being sent); waiting for the response head. */
  AwaitingHead,
  /** Response head sent to the client; relaying the body. */
  Streaming,
  Tunnel,
  Done,
}

/** Kinds of upstream failure, as proxy_next_upstream names them. */
const enum FailKind {
  Error = NextUpstream.Error,
  Timeout = NextUpstream.Timeout,
  InvalidHeader = NextUpstream.InvalidHeader,
}

const NON_IDEMPOTENT = new NameSet(['POST', 'LOCK', 'PATCH']);
const MIN_REPLAY_BYTES = 16 * 1024;
/** Where an internal redirect lands; `uri`/`args` undefined: the request's stay (a named location). */
interface InternalTarget {
  location: LocationRuntime;
  captures: readonly string[] | null;
  uri: string | undefined;
  args: string | undefined;
}

/** nginx's limit on internal redirects in one request (NGX_HTTP_MAX_URI_CHANGES). */
const MAX_INTERNAL_REDIRECTS = 10;
const LAST_CHUNK_BUF = Buffer.from(LAST_CHUNK, 'latin1');
const CRLF_BUF = Buffer.from('\r\n', 'latin1');

/** Servers tried for one request: tiny, so a plain array. */
class TriedList implements Tried {
  private readonly servers: ServerState[] = [];
  get length(): number {
    return this.servers.length;
  }
  includes(server: ServerState): boolean {
    return this.servers.includes(server);
  }
  add(server: ServerState): void {
    this.servers.push(server);
  }
  static of(server: ServerState): TriedList {
    const t = new TriedList();
    t.add(server);
    return t;
  }
}

const NO_TRIES: Tried = { length: 0, includes: () => false };

/** What the exchange needs from the connection that owns it. */
export interface ExchangeHost {
  /** Called once, when the response is complete (or aborted) and the request body is done or abandoned. */
  exchangeDone(ex: Exchange, keepAlive: boolean): void;
  /** The connection is draining (reload/shutdown): no keep-alive after this response. */
  readonly draining: boolean;
}

export class Exchange implements UpstreamUser, VariableContext {
  // ---- VariableContext
  readonly request: RequestHead;
  uri = '/';
  args = '';
  readonly scheme: string;
  serverName = '';
  host = '';
  captures: readonly string[] | null = null;
  /** The client's address: the connection's, or the one set_real_ip_from let a header give (realIpApplied). */
  remoteAddr: string;
  remotePort: number;
  private realIpApplied = false;
  /** WWW-Authenticate for a 401 that auth_basic refused. */
  private authChallenge: string | undefined = undefined;
  /** error_page redirected this request already: a second error gets the built-in page (nginx's recursive_error_pages off). */
  private errorPageUsed = false;
  /** limit_req: how long this request waits before it runs (ms). */
  private rateDelayMs = 0;
  /** try_files was checked for this location (a redirect to another location checks again). */
  private triedFilesFor: LocationRuntime | undefined = undefined;
  /** Internal redirects and rewrite cycles so far. */
  private redirects = 0;
  /** A rewrite changed $uri (or an internal redirect did): it, not the client's, goes upstream. */
  private uriRewritten = false;
  /** A `break` stopped the rewrite module before the location's `return`: its files answer instead. */
  private brokeBeforeReturn = false;
  /** Values `set` gave in this request. */
  private userVariables: Map<string, string> | undefined = undefined;
  /** While an error page is served: the status to send (0 none, -1 the page handler's own). */
  private errorStatus = 0;
  readonly requestId: string;
  readonly connectionId: number;
  readonly connectionRequests: number;
  readonly startTime: number;
  status = 0;
  bodyBytesSent = DOUBLE_ZERO;
  readonly requestLength: number;
  /** The current upstream attempt and any before it; formatted only when a log or variable asks. */
  private current: AttemptRecord | undefined;
  private earlierAttempts: AttemptRecord[] | undefined;
  proxyHost = '';
  proxyPort = '';

  // ---- routing
  server: VirtualServer | undefined;
  location: LocationRuntime | undefined;
  private proxy: ProxyRuntime | undefined;

  // ---- proxy state
  private phase = Phase.Routing;
  private readonly started: number;
  private conn: UpstreamConnection | undefined;
  private serverState: ServerState | undefined;
  /** The first server tried; a TriedList is only made for a retry. */
  private firstTried: ServerState | undefined;
  private tried: TriedList | undefined;
  private attempts = 0;
  private attemptStart = DOUBLE_ZERO;
  private upstreamHeadText = '';
  private headSentToClient = false;
  private isUpgrade = false;
  /** Request body framing upstream: -1 none, -2 chunked, else Content-Length. */
  private bodyLength = -1;
  private requestBodyDone: boolean;
  /** Every body chunk received so far, while they fit in the replay budget; undefined after. */
  private replay: Buffer[] | undefined = [];
  private replayBytes = DOUBLE_ZERO;
  private replayBudget = MIN_REPLAY_BYTES;
  /** Body chunks received while no upstream connection could take them. */
  private held: Buffer[] = [];
  private bodyBytesReceived = DOUBLE_ZERO;
  private upstreamBlockedSince = DOUBLE_ZERO;
  private downstreamBlockedSince = DOUBLE_ZERO;
  private staleRetryUsed = false;
  private lastFailure: FailKind = FailKind.Error;
  private upstreamHeaders: ResponseHead | undefined;
  private clientWantsKeepAlive: boolean;
  private finished = false;
  /** limit_conn counters this request holds until it finishes. */
  private heldLimits: { counts: Map<string, number>; key: string }[] | undefined;

  constructor(
    /** The client connection; for a compressed response, a GzipDownstream around it (src/proxy/gzip.ts). */
    public down: Downstream,
    private readonly owner: ExchangeHost,
    head: RequestHead,
    now: number,
    requestLength: number,
  ) {
    this.request = head;
    this.started = now;
    this.startTime = turnEpochMs();
    this.scheme = down.scheme;
    this.remoteAddr = down.remoteAddr;
    this.remotePort = down.remotePort;
    this.connectionId = down.connectionId;
    this.connectionRequests = down.requestCount;
    this.requestLength = requestLength;
    this.clientWantsKeepAlive = head.wantsKeepAlive;
    this.requestBodyDone = !head.hasBody;
    this.requestId = nextRequestId(head.header('x-request-id'));
  }

  get realipRemoteAddr(): string {
    return this.down.remoteAddr;
  }

  get realipRemotePort(): number {
    return this.down.remotePort;
  }

  get serverAddr(): string {
    return this.down.localAddr;
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.down.tlsSocket;
  }

  get clientCertificateRequested(): boolean {
    return this.server?.clientVerify !== undefined;
  }

  get serverPort(): number {
    return this.down.localPort;
  }

  get bytesSent(): number {
    return this.bodyBytesSent;
  }

  /** Whether the connection may carry another request after this response. */
  get keepAlive(): boolean {
    return this.clientWantsKeepAlive && !this.owner.draining;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** The method handlers see: an error page is fetched with GET (HEAD stays HEAD), as nginx does. */
  get method(): string {
    return this.errorPageUsed && this.request.method !== 'HEAD' ? 'GET' : this.request.method;
  }

  // =================================================================== routing

  /** Routes the request on the virtual server the listener chose and handles it. */
  start(server: VirtualServer): void {
    if (this.route(server)) this.run();
  }

  /**
   * Routing and the checks that need no I/O: URI normalisation, a server-level
   * return, location matching, allow/deny, client_max_body_size against
   * Content-Length. Returns false when it already answered. Split from run()
   * so that the HTTP/1.1 connection can validate the body bytes that came
   * with the head before anything is sent upstream.
   */
  route(server: VirtualServer): boolean {
    this.server = server;
    this.serverName = server.primaryName;
    if (server.clientVerify !== undefined && !this.clientCertificateAccepted(server.clientVerify)) return false;
    const head = this.request;
    this.host = head.host !== undefined && head.host !== '' ? hostWithoutPort(head.host) : server.primaryName;
    const q = head.path.indexOf('?');
    const rawPath = q < 0 ? head.path : head.path.slice(0, q);
    this.args = q < 0 ? '' : head.path.slice(q + 1);
    const uri = normalizePath(rawPath, server.settings.mergeSlashes);
    if (uri === undefined) {
      this.reject(400);
      return false;
    }
    this.uri = uri;
    // The realip module's post-read phase, with the server's settings, before anything reads the client address.
    if (server.settings.realIp !== undefined) this.applyRealIp(server.settings.realIp);
    if (server.rewrite !== undefined) {
      // The server's rewrite directives (its `return` among them, in order), before any location.
      if (runRewrites(server.rewrite, this) === RewriteOutcome.Done) return false;
    } else if (server.serverReturn !== undefined) {
      serveReturn(this, server.serverReturn, server.settings);
      return false;
    }
    if (!this.findLocation(server)) return false;
    const location = this.location!;
    const settings = location.settings;
    // The realip module runs again in the preaccess phase with the location's settings, unless it already changed the address.
    if (settings.realIp !== undefined && !this.realIpApplied) this.applyRealIp(settings.realIp);
    if ((settings.access !== undefined || settings.authBasic !== undefined) && !this.admitAccess(settings)) return false;
    if (settings.clientMaxBodySize !== 0 && head.contentLength > settings.clientMaxBodySize) {
      this.reject(413);
      return false;
    }
    if (settings.limitReq.length !== 0 && !this.admitRate(settings)) return false;
    if (settings.limitConn.length !== 0 && !this.admitLimits(settings.limitConn)) {
      this.reject(settings.limitConnStatus);
      return false;
    }
    return true;
  }

  /**
   * ssl_verify_client, checked for the server the request was routed to
   * before anything else, as nginx: a refusal is nginx's 400 page for 495 or
   * 496, and the connection closes.
   */
  private clientCertificateAccepted(verify: ClientVerify): boolean {
    const socket = this.down.tlsSocket;
    const refusal = checkClientCertificate(socket, verify);
    if (refusal === ClientCertRefusal.None) return true;
    log().info({ client: this.remoteAddr, server: this.serverName, reason: refusalMessage(refusal, socket) }, 'client certificate refused');
    this.clientWantsKeepAlive = false;
    const headers = this.down.responseHeaders();
    headers.add('Content-Type', 'text/html');
    this.respondFull(400, headers, refusalPage(refusal));
    return false;
  }

  /**
   * Location matching, and the chosen location's rewrite directives: a
   * rewritten URI is matched again (nginx's cycle, at most 10 times).
   * False when a response was sent.
   */
  private findLocation(server: VirtualServer): boolean {
    for (;;) {
      const match = server.locations.find(this.uri);
      if (match === undefined) {
        this.respondError(404);
        return false;
      }
      // nginx: a URI changed by rewrite counts as internal, the client's own does not.
      if (match.value.internal === true && !this.uriRewritten) {
        this.respondError(404);
        return false;
      }
      this.location = match.value;
      this.captures = match.captures;
      const program = match.value.rewrite;
      if (program === undefined) return true;
      const before = this.uri;
      const outcome = runRewrites(program, this);
      if (outcome === RewriteOutcome.Done) return false;
      if (outcome === RewriteOutcome.Break) {
        this.brokeBeforeReturn = match.value.filesAfterBreak !== undefined;
        return true;
      }
      if (outcome === RewriteOutcome.Continue && this.uri === before) return true;
      if (++this.redirects > MAX_INTERNAL_REDIRECTS) {
        log().error({ uri: this.uri }, 'rewrite or internal redirection cycle');
        this.respondError(500);
        return false;
      }
    }
  }

  // ---- RewriteSubject (src/runtime/rewrite.ts)

  setVariable(name: string, value: string): void {
    (this.userVariables ??= new Map()).set(name, value);
  }

  userVariable(name: string): string {
    return this.userVariables?.get(name) ?? '';
  }

  rewriteUri(uri: string): boolean {
    const normalized = normalizePath(uri, this.server!.settings.mergeSlashes);
    if (normalized === undefined) {
      this.reject(400);
      return false;
    }
    this.uri = normalized;
    this.uriRewritten = true;
    return true;
  }

  rewriteReturn(ret: ReturnRuntime): void {
    serveReturn(this, ret, (this.location ?? this.server!).settings);
  }

  rewriteRedirect(code: number, url: string): void {
    this.respondRedirect(code, absoluteLocation(this, url));
  }

  /** limit_req: refuses the request (limit_req_status), or lets it through, perhaps after a delay (run() waits it out). */
  private admitRate(settings: EffectiveSettings): boolean {
    const verdict = checkLimitReq(settings.limitReq, (rule) => rule.key.expand(this), turnNow());
    const refused = verdict.refusedBy;
    if (refused !== undefined) {
      log()[settings.limitReqLogLevel]({ zone: refused.zone.name, excess: (verdict.excess / 1000).toFixed(3), client: this.remoteAddr, dryRun: settings.limitReqDryRun }, 'limiting requests');
      if (settings.limitReqDryRun) return true;
      this.reject(settings.limitReqStatus);
      return false;
    }
    if (verdict.delayMs > 0) {
      // nginx logs a delay one level below a refusal.
      const level = settings.limitReqLogLevel === 'error' ? 'warn' : 'info';
      log()[level]({ client: this.remoteAddr, delayMs: verdict.delayMs, dryRun: settings.limitReqDryRun }, 'delaying request');
      if (!settings.limitReqDryRun) this.rateDelayMs = verdict.delayMs;
    }
    return true;
  }

  /** set_real_ip_from: a trusted connection's client address comes from the configured header. */
  private applyRealIp(realIp: RealIpRuntime): void {
    if (realIp.trusted === undefined) return;
    const real = realAddress(realIp, this.down.remoteAddr, this.request);
    if (real === undefined) return;
    this.remoteAddr = real.address;
    this.remotePort = real.port;
    this.realIpApplied = true;
  }

  /**
   * nginx's access phase: allow/deny, then auth_basic, combined as `satisfy`
   * says. Answers 403 or 401 itself and returns false when refused.
   */
  private admitAccess(settings: EffectiveSettings): boolean {
    const verdict = settings.access === undefined ? 0 : settings.access.verdict(this.remoteAddr);
    const auth = settings.authBasic !== undefined && settings.authBasic.enabled ? settings.authBasic : undefined;
    if (settings.satisfyAny) {
      if (verdict > 0) return true;
      if (auth !== undefined) {
        if (authenticated(auth, this)) return true;
        this.refuseAuth(auth);
        return false;
      }
      if (verdict < 0) {
        this.reject(403);
        return false;
      }
      return true;
    }
    if (verdict < 0) {
      this.reject(403);
      return false;
    }
    if (auth !== undefined && !authenticated(auth, this)) {
      this.refuseAuth(auth);
      return false;
    }
    return true;
  }

  private refuseAuth(auth: AuthBasicRuntime): void {
    // nginx says nothing when no credentials came (the browser's first try), and logs an error for wrong ones.
    const user = remoteUser(this);
    if (user !== '') log().error({ client: this.remoteAddr, user }, 'auth_basic: user not found or password mismatch');
    this.authChallenge = challenge(auth, this);
    // An unread request body would be taken for the next request: close after answering.
    if (!this.requestBodyDone) this.clientWantsKeepAlive = false;
    this.respondError(401);
  }

  /** limit_conn: admits the request under every rule, or under none. */
  private admitLimits(rules: readonly LimitConnRule[]): boolean {
    for (const rule of rules) {
      // The connection count is the client's only while the realip module left the address alone.
      if (rule.perClientAddress && !this.realIpApplied) {
        if (this.down.connectionsFromClient() > rule.limit) {
          this.releaseLimits();
          return false;
        }
        continue;
      }
      const key = rule.key.expand(this);
      const count = rule.counts.get(key) ?? 0;
      if (count >= rule.limit) {
        this.releaseLimits();
        return false;
      }
      rule.counts.set(key, count + 1);
      (this.heldLimits ??= []).push({ counts: rule.counts, key });
    }
    return true;
  }

  private releaseLimits(): void {
    const held = this.heldLimits;
    if (held === undefined) return;
    this.heldLimits = undefined;
    for (const { counts, key } of held) {
      const n = (counts.get(key) ?? 1) - 1;
      if (n <= 0) counts.delete(key);
      else counts.set(key, n);
    }
  }

  /**
   * An internal redirect (try_files' fallback): the request is routed again
   * to `target`, a URI (with its own arguments) or a named location, as
   * nginx does; more than 10 in one request is a loop (500).
   */
  internalRedirect(target: string): void {
    this.triedFilesFor = undefined;
    if (++this.redirects > MAX_INTERNAL_REDIRECTS) {
      log().error({ uri: this.uri, target }, 'rewrite or internal redirection cycle');
      return this.respondError(500);
    }
    const landing = this.internalTarget(target);
    // nginx: an unknown named location is a 500, a URI no location takes a 404.
    if (landing === undefined) return this.respondError(target.startsWith('@') ? 500 : 404);
    this.enter(landing);
    this.run();
  }

  /**
   * Where an internal redirect to `target` lands (nothing is changed yet):
   * a named location keeps the request's URI and arguments; a URI brings its
   * own arguments, or none, as nginx's ngx_http_internal_redirect.
   */
  private internalTarget(target: string): InternalTarget | undefined {
    const server = this.server;
    if (server === undefined) return undefined;
    if (target.startsWith('@')) {
      const named = server.named.get(target);
      return named === undefined ? undefined : { location: named, captures: null, uri: undefined, args: undefined };
    }
    const q = target.indexOf('?');
    const uri = normalizePath(q < 0 ? target : target.slice(0, q), server.settings.mergeSlashes);
    const match = uri === undefined ? undefined : server.locations.find(uri);
    if (match === undefined) return undefined;
    return { location: match.value, captures: match.captures, uri, args: q < 0 ? '' : target.slice(q + 1) };
  }

  private enter(landing: InternalTarget): void {
    if (landing.uri !== undefined) {
      this.uri = landing.uri;
      this.args = landing.args!;
      this.uriRewritten = true;
    }
    this.location = landing.location;
    this.captures = landing.captures;
  }

  /** try_files: the first candidate that exists becomes $uri and the location's action serves it; else the fallback. */
  private async tryFiles(location: LocationRuntime, t: TryFilesRuntime): Promise<void> {
    for (const candidate of t.candidates) {
      const value = candidate.constant ?? candidate.expand(this);
      if (value === '') continue;
      // As nginx: a candidate written with a final "/" must be a directory, and $uri becomes it without that "/".
      const directory = candidate.source.endsWith('/');
      const file = fileFor(t.files, value);
      if (file === undefined) continue;
      const found = await fs.promises.stat(file).then(
        (st) => (directory ? st.isDirectory() : st.isFile()),
        () => false,
      );
      if (this.finished) return;
      if (!found) continue;
      this.uri = directory ? value.slice(0, -1) : value;
      this.triedFilesFor = location;
      return this.run();
    }
    if (this.finished) return;
    if (t.fallback.code !== undefined) return this.respondError(t.fallback.code);
    this.internalRedirect(t.fallback.uri.constant ?? t.fallback.uri.expand(this));
  }

  /** Runs the matched location's handler (after limit_req's delay, if it set one). */
  run(): void {
    if (this.rateDelayMs > 0) {
      const ms = this.rateDelayMs;
      this.rateDelayMs = 0;
      // Body bytes wait with the request: the client is paused until it runs.
      if (this.location!.action.kind === 'proxy' && !this.requestBodyDone) this.down.pauseRequestBody();
      setTimeout(() => {
        if (this.finished) return;
        if (this.location!.action.kind === 'proxy' && !this.requestBodyDone) this.down.resumeRequestBody();
        this.run();
      }, ms);
      return;
    }
    const location = this.location!;
    if (location.tryFiles !== undefined && this.triedFilesFor !== location) {
      this.triedFilesFor = location;
      // Body bytes wait while files are looked up: the fallback may be a location that proxies.
      if (!this.requestBodyDone && this.request.hasBody) this.down.pauseRequestBody();
      void this.tryFiles(location, location.tryFiles);
      return;
    }
    if (location.tryFiles !== undefined && !this.requestBodyDone && this.request.hasBody && location.action.kind !== 'proxy') this.down.resumeRequestBody();
    const action = location.action;
    if (this.brokeBeforeReturn) return serveStatic(this, location.filesAfterBreak!, location.settings);
    switch (action.kind) {
      case 'return':
        return serveReturn(this, action.ret, location.settings);
      case 'static':
        return serveStatic(this, action.files, location.settings);
      case 'proxy':
        return this.startProxy(action.proxy);
      case 'stub_status':
        return serveStubStatus(this);
    }
  }

  /** client_max_body_size of the matched location (0 = unlimited). */
  get bodyLimit(): number {
    return this.location?.settings.clientMaxBodySize ?? 0;
  }

  /** The request body is over client_max_body_size: 413 if nothing was answered yet, else cut the connection. */
  bodyTooLarge(): void {
    this.requestBodyDone = true;
    if (!this.headSentToClient) {
      this.dropUpstream();
      return this.reject(413);
    }
    this.abortClient('request body too large');
  }

  /** Answers with an error and closes the connection afterwards (the body, if any, is not read). */
  reject(status: number): void {
    this.clientWantsKeepAlive = false;
    this.respondError(status);
  }

  // =================================================================== responses fulcrum makes itself

  /** Sends a complete response (errors, return, small static answers). */
  respondFull(status: number, headers: HeaderList, body: Buffer | null, noBody = false): void {
    if (this.finished || this.headSentToClient) return;
    status = this.withErrorStatus(status);
    addOwnHeaders(headers);
    this.addConfiguredHeaders(headers, status);
    this.status = status;
    this.headSentToClient = true;
    const suppress = noBody || this.request.method === 'HEAD' || statusHasNoBody(status);
    let length = body === null ? 0 : body.length;
    this.bodyBytesSent = suppress || body === null ? 0 : body.length;
    const gzip = (this.location ?? this.server)?.settings.gzip;
    if (gzip !== undefined && gzip.enabled && !suppress) length = this.gzipResponse(gzip, status, length, (name) => headers.get(name), headers, length);
    this.down.sendHead(status, reasonPhrase(status), headers, length, suppress, suppress ? null : body, true);
    this.finish();
  }

  /** A redirect fulcrum makes itself (return, rewrite, error_page, a directory without its slash): Location and nginx's page. */
  respondRedirect(code: number, location: string): void {
    const headers = this.down.responseHeaders();
    headers.add('Content-Type', 'text/html');
    headers.add('Location', location);
    this.respondFull(code, headers, errorPage(code));
  }

  respondError(status: number): void {
    if (!this.errorPageUsed && !this.headSentToClient && !this.finished) {
      const page = (this.location?.settings ?? this.server?.settings)?.errorPages.get(status);
      if (page !== undefined && this.serveErrorPage(page, status)) return;
    }
    const headers = this.down.responseHeaders();
    headers.add('Content-Type', 'text/html');
    if (status === 401 && this.authChallenge !== undefined) headers.add('WWW-Authenticate', this.authChallenge);
    if (this.proxy !== undefined && this.location!.settings.debugHeader) this.addDebugHeaders(headers, undefined);
    this.respondFull(status, headers, errorPage(status));
  }

  /**
   * nginx's error_page, once per request (recursive_error_pages off): a local
   * URI is served by the location it matches, as an internal redirect with
   * the method GET, and the response keeps the error's status (or the one the
   * page names); a URL is a redirect (302, or the 301/303/307/308 named).
   * False when the page cannot be served here (a location that proxies:
   * fulcrum serves error pages from `root`/`alias`/`return` locations), and
   * the built-in page is sent instead.
   */
  private serveErrorPage(page: ErrorPageRuntime, status: number): boolean {
    this.errorPageUsed = true;
    const target = page.uri.constant ?? page.uri.expand(this);
    if (!target.startsWith('/') && !target.startsWith('@')) {
      const code = page.response === 301 || page.response === 303 || page.response === 307 || page.response === 308 ? page.response : 302;
      this.respondRedirect(code, target);
      return true;
    }
    if (this.server === undefined) return false;
    const landing = this.internalTarget(target);
    if (landing === undefined) {
      if (target.startsWith('@')) return false;
      // As nginx: the page's URI matching no location is a 404 of its own.
      this.respondError(404);
      return true;
    }
    if (landing.location.action.kind === 'proxy') return false;
    this.enter(landing);
    this.errorStatus = page.response === 0 ? status : page.response;
    this.run();
    return true;
  }

  /** While an error page is served: the status its successful answer is sent with. */
  private withErrorStatus(status: number): number {
    return this.errorStatus > 0 && status >= 200 && status < 300 ? this.errorStatus : status;
  }

  /** Starts a streamed response of a handler (static files). `length` -1 = unknown. */
  beginStream(status: number, headers: HeaderList, length: number): boolean {
    status = this.withErrorStatus(status);
    addOwnHeaders(headers);
    this.addConfiguredHeaders(headers, status);
    this.status = status;
    this.headSentToClient = true;
    this.phase = Phase.Streaming;
    const noBody = this.request.method === 'HEAD' || statusHasNoBody(status);
    const gzip = (this.location ?? this.server)?.settings.gzip;
    if (gzip !== undefined && gzip.enabled && !noBody) length = this.gzipResponse(gzip, status, length, (name) => headers.get(name), headers, length);
    if (length < 0 && !this.down.canChunk) this.clientWantsKeepAlive = false;
    return this.down.sendHead(status, reasonPhrase(status), headers, length, noBody, null, noBody);
  }

  streamData(chunk: Buffer): boolean {
    this.bodyBytesSent += chunk.length;
    return this.down.sendBody(chunk);
  }

  streamEnd(): void {
    this.down.endBody();
    this.finish();
  }

  streamAbort(reason: string): void {
    this.down.abort(reason);
    this.finish();
  }

  /** expires, charset, add_header (2xx/3xx, or `always`) and HSTS. */
  private addConfiguredHeaders(headers: HeaderList, status: number): void {
    const settings = this.location?.settings ?? this.server?.settings;
    if (settings !== undefined && settings.expires !== undefined && headersFilterApplies(status)) applyExpires(headers, settings.expires, Date.now());
    if (settings !== undefined && settings.charset !== undefined) applyCharset(headers, settings.charset, status);
    if (settings !== undefined && settings.addHeaders.length > 0) {
      const success = status === 200 || status === 201 || status === 204 || status === 206 || (status >= 301 && status <= 308);
      for (const h of settings.addHeaders) if (success || h.always) headers.add(h.name, h.value.expand(this));
    }
    if (this.server !== undefined && this.server.hstsSeconds > 0 && this.scheme === 'https') {
      headers.add('Strict-Transport-Security', `max-age=${this.server.hstsSeconds}`);
    }
  }

  /**
   * gzip on: `Vary: Accept-Encoding` for a compressible response (gzip_vary),
   * and for one the client gets compressed, the compressing Downstream from
   * here on. Returns the length to send: -1 once compressed (unknown until
   * the end). `contentLength`: the response's own, -1 when unknown.
   */
  private gzipResponse(gzip: GzipRuntime, status: number, contentLength: number, header: ResponseHeaderLookup, headers: HeaderList, length: number): number {
    const verdict = gzipVerdict(gzip, this.request, status, contentLength, header);
    if (verdict === GzipVerdict.None) return length;
    if (gzip.vary) headers.add('Vary', 'Accept-Encoding');
    if (verdict === GzipVerdict.VaryOnly) return length;
    this.down = new GzipDownstream(this.down, gzip.level);
    return -1;
  }

  // =================================================================== proxying

  private startProxy(proxy: ProxyRuntime): void {
    const head = this.request;
    this.proxy = proxy;
    this.proxyHost = proxy.proxyHost;
    this.proxyPort = proxy.proxyPort;
    this.replayBudget = Math.max(this.location!.settings.clientBodyBufferSize, MIN_REPLAY_BYTES);
    this.isUpgrade = head.connectionUpgrade && head.upgrade !== undefined && head.method === 'GET' && head.upgrade.toLowerCase() !== 'h2c';
    this.bodyLength = head.chunked ? -2 : head.contentLength >= 0 ? head.contentLength : -1;
    const uri = upstreamUri(proxy, head, this.uri, this.args, this.uriRewritten);
    this.upstreamHeadText = buildUpstreamHead(
      proxy,
      this,
      uri,
      { bodyLength: this.bodyLength, upgrade: this.isUpgrade ? head.upgrade : undefined },
      this.requestId,
      !this.location!.settings.underscoresInHeaders,
    );
    if (head.expectContinue && head.hasBody) this.down.sendContinue();
    this.tryNext();
  }

  private get mayResend(): boolean {
    if (!NON_IDEMPOTENT.has(this.request.method)) return true;
    if ((this.proxy!.nextUpstream & NextUpstream.NonIdempotent) !== 0) return true;
    return this.location!.settings.retryIdempotencyKey && this.request.header('idempotency-key') !== undefined;
  }

  private get bodyReplayable(): boolean {
    return this.replay !== undefined;
  }

  /** Picks the next server and sends the request there (or answers 502/504 when none is left). */
  private tryNext(): void {
    const now = turnNow();
    const server = this.proxy!.group.pick({ vars: this, now }, this.tried ?? (this.firstTried === undefined ? NO_TRIES : (this.tried = TriedList.of(this.firstTried))));
    if (server === undefined) return this.failResponse(this.lastFailure === FailKind.Timeout ? 504 : 502);
    this.attempts++;
    noteSelected(server, now);
    if (this.tried !== undefined) this.tried.add(server);
    else this.firstTried = server;
    this.serverState = server;
    server.acquire();
    server.requests++;
    if (this.attempts > 1) server.retries++;
    this.attemptStart = now;
    const record: AttemptRecord = { server, connectMs: -1, headerMs: -1, responseMs: -1, status: 0 };
    if (this.current !== undefined) (this.earlierAttempts ??= []).push(this.current);
    this.current = record;
    const pooled = this.isUpgrade ? undefined : server.pool?.acquire(now);
    if (pooled !== undefined) {
      this.conn = pooled;
      pooled.startRequest(this, this.request.method === 'HEAD', now);
      this.current.connectMs = 0;
      this.sendRequest(pooled);
    } else {
      this.openFresh(server, now);
    }
  }

  private openFresh(server: ServerState, now: number): void {
    this.phase = Phase.Connecting;
    const conn = new UpstreamConnection(server, now, this.proxy!.connectTimeoutMs, this.isUpgrade);
    this.conn = conn;
    conn.startRequest(this, this.request.method === 'HEAD', now);
  }

  upstreamConnected(conn: UpstreamConnection): void {
    if (conn !== this.conn) return;
    this.current!.connectMs = performance.now() - this.attemptStart;
    this.sendRequest(conn);
  }

  /** Writes the request head and every body byte received so far. */
  private sendRequest(conn: UpstreamConnection): void {
    this.phase = Phase.AwaitingHead;
    const socket = conn.socket;
    // A retry resends the whole body kept for replay; a first attempt sends what was held while connecting.
    const backlog = this.attempts > 1 || this.staleRetryUsed ? (this.replay ?? []) : this.held;
    this.held = [];
    if (backlog.length === 0 && !(this.requestBodyDone && this.bodyLength === -2)) {
      writeAtEndOfTurn(socket, this.upstreamHeadText); // a head alone never fills the socket's buffer
    } else {
      flushTurnWrites();
      socket.cork();
      socket.write(this.upstreamHeadText, 'latin1');
      for (const chunk of backlog) this.writeBody(socket, chunk);
      if (this.requestBodyDone && this.bodyLength === -2) socket.write(LAST_CHUNK_BUF);
      socket.uncork();
      if (socket.writableNeedDrain) this.noteUpstreamBlocked();
    }
    conn.lastRead = turnNow();
    if (!this.requestBodyDone && this.upstreamBlockedSince === 0) this.down.resumeRequestBody();
  }

  private writeBody(socket: UpstreamConnection['socket'], chunk: Buffer): boolean {
    flushTurnWrites(); // the head may still be waiting for the end of the turn
    if (this.bodyLength !== -2) return socket.write(chunk);
    socket.write(chunk.length.toString(16) + '\r\n', 'latin1');
    socket.write(chunk);
    return socket.write(CRLF_BUF);
  }

  private noteUpstreamBlocked(): void {
    if (this.upstreamBlockedSince === 0) {
      this.upstreamBlockedSince = performance.now();
      this.down.pauseRequestBody();
    }
  }

  upstreamDrain(conn: UpstreamConnection): void {
    if (conn !== this.conn || this.upstreamBlockedSince === 0) return;
    this.upstreamBlockedSince = 0;
    this.down.readBuffersWrittenOut();
    if (!this.requestBodyDone) this.down.resumeRequestBody();
  }

  // ------------------------------------------------------------------- request body from the client

  /**
   * A piece of the (de-chunked) request body arrived from the client.
   * `lendable`: the bytes are in the client connection's own read buffer;
   * written on without a copy, with down.keepReadBuffer() when the write
   * keeps them. What is kept for a replay or held while connecting is copied.
   */
  requestData(chunk: Buffer, lendable: boolean): void {
    this.bodyBytesReceived += chunk.length;
    const limit = this.bodyLimit;
    // Chunked bodies are checked at each size line by the connection; this catches the rest.
    if (limit !== 0 && this.bodyBytesReceived > limit) return this.bodyTooLarge();
    if (this.finished) return;
    if (lendable && (this.replay !== undefined || this.proxy === undefined || this.conn === undefined || this.phase === Phase.Connecting)) {
      chunk = Buffer.from(chunk);
      lendable = false;
    }
    if (this.proxy === undefined) {
      // Before run(): body bytes that came with the head are held until the request is sent
      // (and, behind try_files, until it is known where the request goes).
      if (this.location?.action.kind === 'proxy' || this.location?.tryFiles !== undefined) {
        this.keepForReplay(chunk);
        this.held.push(chunk);
      }
      return;
    }
    this.keepForReplay(chunk);
    const conn = this.conn;
    if (conn === undefined || this.phase === Phase.Connecting) {
      this.held.push(chunk);
      this.down.pauseRequestBody(); // until the upstream connection can take it
      return;
    }
    const socket = conn.socket;
    if (!this.writeBody(socket, chunk)) this.noteUpstreamBlocked();
    if (lendable) {
      if (socket.writableLength > 0) this.down.keepReadBuffer();
      else this.down.readBuffersWrittenOut(); // this write went out whole: so did every one before it
    }
  }

  private keepForReplay(chunk: Buffer): void {
    if (this.replay !== undefined) {
      if (this.replayBytes + chunk.length <= this.replayBudget) {
        this.replay.push(chunk);
        this.replayBytes += chunk.length;
      } else {
        this.replay = undefined; // too big to keep: from here on the request cannot be retried
      }
    }
  }

  /** The request body is complete. */
  requestEnd(): void {
    this.requestBodyDone = true;
    if (this.finished) return;
    const conn = this.conn;
    if (conn !== undefined && this.phase !== Phase.Connecting && this.bodyLength === -2) {
      flushTurnWrites();
      conn.socket.write(LAST_CHUNK_BUF);
    }
  }

  /** The client went away before the exchange finished. Never the server's failure. */
  clientAborted(): void {
    if (this.finished) return;
    if (this.status === 0) this.status = 499;
    this.dropUpstream();
    this.finish();
  }

  // ------------------------------------------------------------------- response from the upstream

  upstreamHead(conn: UpstreamConnection, head: ResponseHead, body: Buffer | null, complete: boolean): void {
    if (conn !== this.conn) return;
    const proxy = this.proxy!;
    const server = this.serverState!;
    const now = turnNow();
    const latency = now - this.attemptStart;
    this.current!.headerMs = latency;
    this.current!.status = head.status;
    server.lastLatencyMs = latency;
    server.latencyEwmaMs = server.latencyEwmaMs === 0 ? latency : server.latencyEwmaMs * 0.8 + latency * 0.2;
    server.headerLatency.observe(latency);
    if (server.watcher !== undefined) server.watcher.timing(server, latency, false);

    if (head.status === 101) {
      if (!this.isUpgrade) {
        noteFailure(server, now, 'unexpected 101 response');
        return this.upstreamFailed(conn, FailKind.InvalidHeader);
      }
      return this.completeUpgrade(conn, head, body);
    }
    const statusBit = STATUS_BITS.get(head.status);
    if (statusBit !== undefined && (proxy.nextUpstream & statusBit) !== 0) {
      // As in nginx, a listed status counts as a failure, except 403 and 404.
      if (head.status !== 403 && head.status !== 404) noteFailure(server, now, `status ${head.status}`);
      if (this.canRetry(statusBit, true)) {
        this.endAttempt();
        conn.destroy();
        this.conn = undefined;
        return this.tryNext();
      }
    } else {
      noteSuccess(server, now);
    }
    server.responses[Math.min(Math.floor(head.status / 100), 5)]!++;
    this.upstreamHeaders = head;
    if (head.status >= 300 && this.location!.settings.interceptErrors && !this.errorPageUsed && this.location!.settings.errorPages.has(head.status)) {
      // proxy_intercept_errors: the upstream's answer is dropped (its connection with it) and the error page is served instead.
      this.dropUpstream();
      if (!this.requestBodyDone) this.clientWantsKeepAlive = false;
      return this.respondError(head.status);
    }
    this.phase = Phase.Streaming;
    this.relayHead(head, body, complete, conn);
  }

  private relayHead(head: ResponseHead, body: Buffer | null, complete: boolean, conn: UpstreamConnection): void {
    const headers = this.down.responseHeaders();
    headers.raw = relayedHeaderLines(head, this.proxy!);
    this.addConfiguredHeaders(headers, head.status);
    const sticky = this.proxy!.group.sticky;
    if (sticky !== undefined) sticky.addSetCookie(headers, this, this.current!.server);
    if (this.location!.settings.debugHeader) this.addDebugHeaders(headers, this.current!.server);
    this.status = head.status;
    this.headSentToClient = true;
    const noBody = this.request.method === 'HEAD' || statusHasNoBody(head.status);
    let length: number;
    if (noBody) length = head.contentLength;
    else if (complete) length = body === null ? 0 : body.length;
    else length = head.chunked ? -1 : head.contentLength;
    const gzip = this.location!.settings.gzip;
    if (gzip.enabled && !noBody) length = this.gzipResponse(gzip, head.status, head.chunked ? -1 : head.contentLength, (name) => head.header(name), headers, length);
    if (length < 0 && !noBody && !this.down.canChunk) this.clientWantsKeepAlive = false; // close-delimited
    this.bodyBytesSent = noBody || body === null ? 0 : body.length;
    const reason = head.reason === '' ? reasonPhrase(head.status) : head.reason;
    const ok = this.down.sendHead(head.status, reason, headers, length, noBody, noBody ? null : body, complete);
    if (complete) this.upstreamComplete(conn);
    else if (!ok) this.noteDownstreamBlocked(conn);
  }

  upstreamData(conn: UpstreamConnection, data: Buffer, lendable: boolean): void {
    if (conn !== this.conn) return;
    this.bodyBytesSent += data.length;
    if (!lendable) {
      if (!this.down.sendBody(data)) this.noteDownstreamBlocked(conn);
      return;
    }
    const result = this.down.lendBody(data);
    if ((result & BodyWrite.Kept) !== 0) conn.keepReadBuffer();
    else conn.readBuffersWrittenOut(); // this write went out whole: so did every one before it
    if ((result & BodyWrite.Blocked) !== 0) this.noteDownstreamBlocked(conn);
  }

  private noteDownstreamBlocked(conn: UpstreamConnection): void {
    if (this.downstreamBlockedSince === 0) this.downstreamBlockedSince = performance.now();
    conn.socket.pause();
  }

  /** The client's write buffer drained. */
  downstreamDrain(): void {
    if (this.downstreamBlockedSince === 0) return;
    this.downstreamBlockedSince = 0;
    const conn = this.conn;
    if (conn !== undefined && this.phase === Phase.Streaming) {
      conn.readBuffersWrittenOut();
      conn.lastRead = performance.now();
      conn.socket.resume();
    }
  }

  upstreamEnd(conn: UpstreamConnection): void {
    if (conn !== this.conn) return;
    this.down.endBody();
    this.upstreamComplete(conn);
  }

  private upstreamComplete(conn: UpstreamConnection): void {
    const now = turnNow();
    this.current!.responseMs = now - this.attemptStart;
    const server = this.serverState;
    if (server !== undefined && server.watcher !== undefined) server.watcher.timing(server, this.current!.responseMs, true);
    this.endAttempt();
    this.conn = undefined;
    // Reading was paused for a slow client (noteDownstreamBlocked) and the response
    // still completed: a pooled connection must read again, or the next request on it hangs.
    if (this.downstreamBlockedSince !== 0) conn.socket.resume();
    // Reusable only if the upstream also got our whole request.
    if (this.requestBodyDone && this.held.length === 0 && this.upstreamBlockedSince === 0) conn.server.pool?.release(conn, now);
    else conn.destroy();
    this.finish(now);
  }

  upstreamError(conn: UpstreamConnection, failure: UpstreamFailure, message: string): void {
    if (conn !== this.conn) return;
    const server = this.serverState!;
    const now = performance.now();
    if (failure === UpstreamFailure.Reset && conn.requests > 1 && !conn.responseStarted && !this.staleRetryUsed && !this.headSentToClient) {
      // The keep-alive race: the upstream closed an idle connection just as we reused it.
      this.staleRetryUsed = true;
      this.conn = undefined;
      if (!this.mayResend || !this.bodyReplayable) return this.failResponse(502);
      return this.openFresh(server, now);
    }
    if (this.headSentToClient) {
      // Mid-body: the client must see the truncation, never a short body that looks complete.
      this.conn = undefined;
      return this.abortClient(message);
    }
    noteFailure(server, now, message);
    this.upstreamFailed(conn, failure === UpstreamFailure.Invalid ? FailKind.InvalidHeader : FailKind.Error);
  }

  private upstreamFailed(conn: UpstreamConnection, kind: FailKind): void {
    this.lastFailure = kind;
    const requestSent = this.phase !== Phase.Connecting;
    conn.destroy();
    this.conn = undefined;
    this.endAttempt();
    if (this.canRetry(kind, requestSent)) return this.tryNext();
    this.failResponse(kind === FailKind.Timeout ? 504 : 502);
  }

  private canRetry(bit: number, requestSent: boolean): boolean {
    const proxy = this.proxy!;
    if (this.headSentToClient || this.isUpgrade) return false;
    if ((proxy.nextUpstream & bit) === 0) return false;
    if (proxy.nextUpstreamTries !== 0 && this.attempts >= proxy.nextUpstreamTries) return false;
    if (proxy.nextUpstreamTimeoutMs !== 0 && performance.now() - this.started >= proxy.nextUpstreamTimeoutMs) return false;
    if (requestSent && !this.mayResend) return false;
    if (!this.bodyReplayable) return false;
    // Checked last: it counts the retry against the upstream's budget.
    const budget = proxy.group.retryBudget;
    if (budget !== undefined && !budget.allow(performance.now(), proxy.group.servers)) return false;
    return true;
  }

  private endAttempt(): void {
    const server = this.serverState;
    if (server !== undefined) {
      server.release();
      this.serverState = undefined;
    }
  }

  private failResponse(status: number): void {
    if (this.headSentToClient) return this.abortClient('upstream failed');
    this.dropUpstream();
    // The body of a request we could not forward is not worth reading: close after answering.
    if (!this.requestBodyDone) this.clientWantsKeepAlive = false;
    this.respondError(status);
  }

  private dropUpstream(): void {
    if (this.conn !== undefined) {
      this.conn.destroy();
      this.conn = undefined;
    }
    this.endAttempt();
  }

  private abortClient(reason: string): void {
    this.dropUpstream();
    this.down.abort(reason);
    this.finish();
  }

  // ------------------------------------------------------------------- upgrades (WebSocket)

  private completeUpgrade(conn: UpstreamConnection, head: ResponseHead, body: Buffer | null): void {
    const takeover = this.down.takeOverSocket();
    if (takeover === undefined) return this.upstreamFailed(conn, FailKind.Error);
    noteSuccess(this.serverState!, performance.now());
    this.status = 101;
    this.headSentToClient = true;
    this.phase = Phase.Tunnel;
    let out = 'HTTP/1.1 101 Switching Protocols\r\n';
    const hide = this.proxy!.hideResponseHeaders;
    for (let i = 0; i < head.count; i++) {
      if (!hide.hasIgnoringCase(head.text, head.starts[i]!, head.colons[i]!)) out += head.name(i) + ': ' + head.value(i) + '\r\n';
    }
    out += 'Connection: upgrade\r\nUpgrade: ' + (head.header('upgrade') ?? this.request.upgrade ?? '') + '\r\n\r\n';
    flushTurnWrites();
    takeover.socket.write(out, 'latin1');
    conn.startTunnel();
    this.conn = undefined;
    this.endAttempt();
    this.clientWantsKeepAlive = false;
    startTunnel(takeover.socket, takeover.buffered, conn.netSocket, body);
    this.finish();
  }

  // ------------------------------------------------------------------- timeouts

  /** Called by the connection sweep with the current time. */
  checkTimeouts(now: number): void {
    const proxy = this.proxy;
    if (proxy === undefined || this.finished) return;
    const conn = this.conn;
    if (conn !== undefined && this.phase === Phase.Connecting) conn.checkConnectTimeout(now);
    if (conn !== undefined && (this.phase === Phase.AwaitingHead || this.phase === Phase.Streaming)) {
      if (this.downstreamBlockedSince === 0 && now - conn.lastRead > proxy.readTimeoutMs) {
        if (this.phase === Phase.AwaitingHead) {
          noteFailure(this.serverState!, now, 'read timeout');
          return this.upstreamFailed(conn, FailKind.Timeout);
        }
        return this.abortClient('upstream timed out sending the response body');
      }
      if (this.upstreamBlockedSince !== 0 && now - this.upstreamBlockedSince > proxy.sendTimeoutMs) {
        noteFailure(this.serverState!, now, 'send timeout');
        return this.upstreamFailed(conn, FailKind.Timeout);
      }
    }
    if (this.downstreamBlockedSince !== 0 && now - this.downstreamBlockedSince > this.location!.settings.sendTimeoutMs) {
      return this.abortClient('client timed out reading the response');
    }
  }

  /** The request body's chunked framing was invalid: 400 and close, nothing more forwarded. */
  clientBodyInvalid(): void {
    this.requestBodyDone = true;
    if (!this.headSentToClient) {
      this.dropUpstream();
      return this.reject(400);
    }
    this.abortClient('invalid request body framing');
  }

  /** client_body_timeout expired: answer 408 if we still can, else cut the connection. */
  clientBodyTimedOut(): void {
    this.requestBodyDone = true;
    if (!this.headSentToClient) {
      this.dropUpstream();
      return this.reject(408);
    }
    this.abortClient('client body timeout');
  }

  // ------------------------------------------------------------------- completion

  /** `now`: a clock reading the caller already has. */
  private finish(now = turnNow()): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = Phase.Done;
    this.endAttempt();
    processStats.record(this.status, now - this.started);
    const logs = (this.location ?? this.server)?.settings.accessLog;
    if (logs !== undefined) for (let i = 0; i < logs.length; i++) logs[i]!.sink.write(logs[i]!.format(this));
    // A request body still arriving is not read further: the connection closes after this response.
    this.owner.exchangeDone(this, this.keepAlive && this.requestBodyDone);
  }

  /** debug_header: the servers tried and why (src/proxy/decision.ts). */
  private addDebugHeaders(headers: HeaderList, answered: ServerState | undefined): void {
    const attempts = this.current === undefined ? [] : [...(this.earlierAttempts ?? []), this.current];
    const group = this.proxy!.group;
    const now = performance.now();
    const denied = group.retryBudget !== undefined && group.retryBudget.deniedAt >= this.started;
    if (attempts.length > 0) headers.add('X-Fulcrum-Upstream', this.upstreamAddr);
    headers.add('X-Fulcrum-Decision', decisionHeader(group, attempts, answered, { vars: this, now }, denied));
  }

  // ------------------------------------------------------------------- VariableContext extras

  get upstreamAddr(): string {
    return joinAttempts(this.earlierAttempts, this.current, (r) => r.server.label);
  }

  get upstreamStatus(): string {
    return joinAttempts(this.earlierAttempts, this.current, (r) => (r.status === 0 ? '502' : '' + r.status));
  }

  get upstreamConnectTime(): string {
    return joinAttempts(this.earlierAttempts, this.current, (r) => seconds(r.connectMs));
  }

  get upstreamHeaderTime(): string {
    return joinAttempts(this.earlierAttempts, this.current, (r) => seconds(r.headerMs));
  }

  get upstreamResponseTime(): string {
    return joinAttempts(this.earlierAttempts, this.current, (r) => seconds(r.responseMs));
  }

  sentHeader(_lowerName: string): string | undefined {
    return undefined;
  }

  upstreamHeader(lowerName: string): string | undefined {
    return this.upstreamHeaders?.header(lowerName);
  }
}

const STATUS_BITS = new Map<number, number>([
  [500, NextUpstream.Http500],
  [502, NextUpstream.Http502],
  [503, NextUpstream.Http503],
  [504, NextUpstream.Http504],
  [403, NextUpstream.Http403],
  [404, NextUpstream.Http404],
  [429, NextUpstream.Http429],
]);

/**
 * The upstream's header lines to pass on, as text: runs of kept lines are
 * sliced from the upstream head as they are; hop-by-hop, hidden and
 * Connection-named fields are left out; Location/Refresh are rewritten for
 * `proxy_redirect default`.
 */
function relayedHeaderLines(head: ResponseHead, proxy: ProxyRuntime): string {
  const hide = proxy.hideResponseHeaders;
  const rewrite = proxy.redirectRewrite;
  const tokens = head.connectionTokens;
  const { starts, colons, text } = head;
  let out = '';
  let run = -1;
  for (let i = 0; i < head.count; i++) {
    const rewritten = rewrite !== undefined && (head.nameIs(i, 'location') || head.nameIs(i, 'refresh')) && head.value(i).includes(rewrite.from);
    const dropped = hide.hasIgnoringCase(text, starts[i]!, colons[i]!) || (tokens !== null && tokens.includes(head.name(i).toLowerCase()));
    if (!dropped && !rewritten) {
      if (run < 0) run = i;
      continue;
    }
    if (run >= 0) {
      out += head.linesText(run, i);
      run = -1;
    }
    if (rewritten) out += head.name(i) + ': ' + head.value(i).replace(rewrite.from, rewrite.to) + '\r\n';
  }
  if (run >= 0) out += head.linesText(run, head.count);
  return out;
}

/** Server and Date on responses fulcrum makes itself (proxied ones keep the upstream's), as nginx does. */
function addOwnHeaders(headers: HeaderList): void {
  headers.add('Server', 'fulcrum');
  headers.add('Date', httpDate());
}

let dateSecond = -1;
let dateText = '';

/** The IMF-fixdate of now, formatted once per second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

interface AttemptRecord {
  server: ServerState;
  connectMs: number;
  headerMs: number;
  responseMs: number;
  status: number;
}

/** nginx's format for $upstream_*_time: seconds with milliseconds, "-" when the phase was not reached. */
function seconds(ms: number): string {
  return ms < 0 ? '-' : (ms / 1000).toFixed(3);
}

function joinAttempts(earlier: readonly AttemptRecord[] | undefined, current: AttemptRecord | undefined, field: (r: AttemptRecord) => string): string {
  if (current === undefined) return '';
  let out = '';
  if (earlier !== undefined) for (const r of earlier) out += field(r) + ', ';
  return out + field(current);
}
