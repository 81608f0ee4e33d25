/**
 * A strict HTTP/1.1 request-head parser (RFC 9112 sections 2-7, RFC 9110).
 *
 * Why not node:http: its per-request objects (IncomingMessage,
 * ServerResponse, header objects, stream machinery) cost more CPU than the
 * whole proxy round trip; see docs/benchmarks.md. The parser here works on the
 * latin1 text of one complete head and fills a reusable RequestHead, so a
 * keep-alive connection allocates almost nothing per request.
 *
 * Strictness rule: anything ambiguous is rejected, so that fulcrum never
 * frames a request differently from the backend behind it (request
 * smuggling). test/unit/http-differential.test.ts checks against llhttp that
 * this parser never accepts a request llhttp rejects.
 */
import { HeaderLines } from './header-lines.js';
import { NameSet } from './name-set.js';
import { WELL_FORMED_REQUEST_HEAD, BARE_CR_OR_LF, FIELD_VALUE, FORBIDDEN_HEAD_CHAR, TOKEN, hasTrailingHtab, parseContentLength, trimOws } from './syntax.js';

/** Methods llhttp knows; a method outside this list is answered 501 (RFC 9110 9.1). */
const KNOWN_METHODS = new NameSet([
  'ACL', 'BIND', 'CHECKOUT', 'CONNECT', 'COPY', 'DELETE', 'GET', 'HEAD', 'LINK', 'LOCK', 'M-SEARCH', 'MERGE',
  'MKACTIVITY', 'MKCALENDAR', 'MKCOL', 'MOVE', 'NOTIFY', 'OPTIONS', 'PATCH', 'POST', 'PROPFIND', 'PROPPATCH',
  'PURGE', 'PUT', 'QUERY', 'REBIND', 'REPORT', 'SEARCH', 'SOURCE', 'SUBSCRIBE', 'TRACE', 'UNBIND', 'UNLINK',
  'UNLOCK', 'UNSUBSCRIBE',
]);

/**
 * The target may hold any visible ASCII except a backslash: `\` is not a URI
 * character (RFC 3986), and WHATWG-URL backends (Node's) read it as `/`, so
 * `/api/..\admin` would leave the location it was routed by.
 */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x5b\x5d-\x7e]+) HTTP\/([0-9])\.([0-9])$/;
/** RFC 3986 host (reg-name, IPv4 or IP-literal) with an optional port; no userinfo, no path. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?$/;
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)([^#]*)$/i;

/** Limits, named as nginx names them. */
export interface HeadLimits {
  /** Longest request line and longest header line (nginx: large_client_header_buffers size). */
  maxLineBytes: number;
  /** Whole head (nginx: large_client_header_buffers number x size). */
  maxHeadBytes: number;
  /** Most header fields accepted. */
  maxHeaders: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxLineBytes: 8192, maxHeadBytes: 32768, maxHeaders: 100 };

/**
 * One parsed request head. Reused across the requests of a keep-alive
 * connection: call reset() before parsing into it again.
 */
export class RequestHead extends HeaderLines {
  method = '';
  /** The request-target exactly as received (nginx's $request_uri for origin-form). */
  target = '';
  /** Origin-form path and query ('/a/b?x=1'); for absolute-form targets, the part after the authority. */
  path = '';
  /** Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor = 1;
  /** Host to route by: from an absolute-form target if present (RFC 9112 3.2.2), else the Host field. Lowercased. */
  host: string | undefined = undefined;
  /** -1 when there is no Content-Length. */
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  /** Extra lowercase names listed in Connection (to strip, RFC 9110 7.6.1); null when none. */
  connectionTokens: string[] | null = null;
  /** Upgrade field value when present. */
  upgrade: string | undefined = undefined;
  expectContinue = false;
  /** Why the head was rejected, for the error log. */
  error = '';

  reset(): void {
    this.method = '';
    this.target = '';
    this.path = '';
    this.versionMinor = 1;
    this.clearLines();
    this.host = undefined;
    this.contentLength = -1;
    this.chunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.connectionTokens = null;
    this.upgrade = undefined;
    this.expectContinue = false;
    this.error = '';
  }

  /** Whether the request has a body to read (RFC 9112 6.3). */
  get hasBody(): boolean {
    return this.chunked || this.contentLength > 0;
  }

  /** Whether the client asked to keep the connection open after this exchange. */
  get wantsKeepAlive(): boolean {
    return this.versionMinor === 1 ? !this.connectionClose : this.connectionKeepAlive;
  }
}

/**
 * Parses `head` (latin1 text of one request head, without the final CRLFCRLF)
 * into `out`. Returns 0 on success, otherwise the status to answer with
 * (400, 405, 414, 431, 501 or 505); `out.error` says why.
 */
export function parseRequestHead(head: string, out: RequestHead, limits: HeadLimits = DEFAULT_HEAD_LIMITS): number {
  if (head.length > limits.maxHeadBytes) {
    // A request line that alone is over the line limit is a 414, whatever the head size (as nginx).
    const firstLineEnd = head.indexOf('\r\n');
    if ((firstLineEnd < 0 ? head.length : firstLineEnd) > limits.maxLineBytes) return fail(out, 414, 'request line too long');
    return fail(out, 431, 'request head too large');
  }
  // Common case: a short, well-formed head needs no per-line character checks.
  const checked = head.length <= limits.maxLineBytes && WELL_FORMED_REQUEST_HEAD.test(head);
  if (!checked) {
    if (FORBIDDEN_HEAD_CHAR.test(head)) return fail(out, 400, 'control character in request head');
    if (BARE_CR_OR_LF.test(head)) return fail(out, 400, 'bare CR or LF in request head');
  }

  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  const status = checked ? parseWellFormedRequestLine(head, lineEnd, out) : parseRequestLine(head.slice(0, lineEnd), out, limits);
  if (status !== 0) return status;

  let hostCount = 0;
  let hostField: string | undefined;
  let teCount = 0;
  let clCount = 0;
  out.text = head;
  let pos = lineEnd + 2;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', pos);
    if (!checked) {
      if (end - pos > limits.maxLineBytes) return fail(out, 431, 'header line too long');
      if (colon < 0 || colon >= end) return fail(out, 400, 'header line without a colon');
      // An empty name, whitespace before the colon and obs-fold (a line
      // starting with whitespace) all fail the token test.
      if (!TOKEN.test(head.slice(pos, colon))) return fail(out, 400, 'invalid header name');
      if (!FIELD_VALUE.test(head.slice(colon + 1, end))) return fail(out, 400, 'invalid header value');
    }
    const i = out.count;
    if (i >= limits.maxHeaders) return fail(out, 431, 'too many header fields');
    out.addLine(pos, colon, end);
    const nameLength = colon - pos;
    pos = end + 2;

    // Only the fields that route, frame or govern the request are read here.
    switch (nameLength) {
      case 4:
        if (!out.nameIs(i, 'host')) break;
        hostCount++;
        hostField = out.value(i);
        break;
      case 14:
        if (!out.nameIs(i, 'content-length')) break;
        clCount++;
        out.contentLength = parseContentLength(out.value(i));
        if (out.contentLength < 0 || hasTrailingHtab(head.slice(colon + 1, end))) return fail(out, 400, 'invalid Content-Length');
        break;
      case 17: {
        if (!out.nameIs(i, 'transfer-encoding')) break;
        teCount++;
        // Only a lone `chunked` is accepted: `gzip, chunked`, `,chunked`,
        // `chunked, chunked`, `identity` are all ambiguous between parsers,
        // and llhttp refuses `chunked<HTAB>`.
        const value = out.value(i);
        if (value.length !== 7 || value.toLowerCase() !== 'chunked' || hasTrailingHtab(head.slice(colon + 1, end))) {
          return fail(out, 400, 'unsupported Transfer-Encoding');
        }
        out.chunked = true;
        break;
      }
      case 10:
        if (out.nameIs(i, 'connection')) parseConnection(head.slice(colon + 1, end), out);
        break;
      case 7:
        if (out.nameIs(i, 'upgrade')) out.upgrade = out.value(i);
        break;
      case 6:
        if (!out.nameIs(i, 'expect')) break;
        if (out.value(i).toLowerCase() === '100-continue') out.expectContinue = true;
        else return fail(out, 417, 'unsupported Expect');
        break;
    }
  }

  if (clCount > 1) return fail(out, 400, 'duplicate Content-Length');
  if (teCount > 1) return fail(out, 400, 'duplicate Transfer-Encoding');
  if (teCount > 0 && clCount > 0) return fail(out, 400, 'both Content-Length and Transfer-Encoding');
  if (teCount > 0 && out.versionMinor === 0) return fail(out, 400, 'Transfer-Encoding on HTTP/1.0');
  if (hostCount > 1) return fail(out, 400, 'duplicate Host');
  // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 even when its
  // target is in absolute-form (nginx and Node's server agree).
  if (hostCount === 0 && out.versionMinor === 1) return fail(out, 400, 'missing Host');
  if (hostField !== undefined) {
    if (!HOST_VALUE.test(hostField) || hostField.includes('..')) return fail(out, 400, 'invalid Host');
    // An absolute-form target's authority wins over the Host field (RFC 9112 3.2.2).
    if (out.host === undefined) out.host = hostField.toLowerCase();
  }
  if (out.method === 'CONNECT') return fail(out, 405, 'CONNECT is not supported');
  if (out.method === 'TRACE') return fail(out, 405, 'TRACE is not allowed');
  return 0;
}

/**
 * The request line of a head that matched WELL_FORMED_REQUEST_HEAD:
 * `METHOD SP target SP HTTP/1.x` is known, so splitting needs no regex.
 */
function parseWellFormedRequestLine(head: string, lineEnd: number, out: RequestHead): number {
  const sp1 = head.indexOf(' ');
  const sp2 = lineEnd - 9; // ' HTTP/1.x'
  const method = head.slice(0, sp1);
  if (!KNOWN_METHODS.has(method)) return fail(out, 501, 'unknown method');
  out.method = method;
  out.versionMinor = head.charCodeAt(lineEnd - 1) - 48;
  return parseTarget(head.slice(sp1 + 1, sp2), method, out);
}

function parseRequestLine(line: string, out: RequestHead, limits: HeadLimits): number {
  if (line.length > limits.maxLineBytes) return fail(out, 414, 'request line too long');
  const m = REQUEST_LINE.exec(line);
  if (m === null) {
    // Distinguish a well-formed line of another protocol version (505) from garbage (400).
    // An HTTP/1.x line that failed REQUEST_LINE has a bad target (e.g. obs-text): 400, not 505.
    const v = /^[A-Z]+ \S+ HTTP\/([0-9])\.([0-9])$/.exec(line);
    if (v !== null && (v[1] !== '1' || (v[2] !== '0' && v[2] !== '1'))) return fail(out, 505, 'unsupported HTTP version');
    return fail(out, 400, 'invalid request line');
  }
  const method = m[1]!;
  const target = m[2]!;
  if (m[3] !== '1' || (m[4] !== '0' && m[4] !== '1')) return fail(out, 505, 'unsupported HTTP version');
  if (!KNOWN_METHODS.has(method)) return fail(out, 501, 'unknown method');
  out.method = method;
  out.versionMinor = m[4] === '1' ? 1 : 0;
  return parseTarget(target, method, out);
}

/** origin-form, absolute-form (RFC 9112 3.2); authority-form only for CONNECT, which is refused later. */
function parseTarget(target: string, method: string, out: RequestHead): number {
  out.target = target;
  if (target.charCodeAt(0) === 0x2f /* / */) {
    if (target.includes('#')) return fail(out, 400, 'fragment in request target');
    out.path = target;
    return 0;
  }
  if (method === 'CONNECT') return 0; // authority-form; refused with 405 after the headers
  const abs = ABSOLUTE_FORM.exec(target);
  if (abs === null) return fail(out, 400, 'invalid request target');
  const authority = abs[2]!;
  if (authority === '' || !HOST_VALUE.test(authority) || authority.includes('..')) return fail(out, 400, 'invalid authority in request target');
  out.host = authority.toLowerCase();
  const rest = abs[3]!;
  out.path = rest === '' ? '/' : rest.charCodeAt(0) === 0x3f /* ? */ ? '/' + rest : rest;
  if (out.path.charCodeAt(0) !== 0x2f) return fail(out, 400, 'invalid request target');
  return 0;
}

/** `raw` is the untrimmed field value. */
function parseConnection(raw: string, out: RequestHead): void {
  const elements = raw.split(',');
  for (const element of elements) {
    const t = trimOws(element).toLowerCase();
    if (t === 'close') out.connectionClose = true;
    else if (t === 'keep-alive') {
      // llhttp only skips SP after a token: for it `keep-alive<HTAB>` is not
      // keep-alive and an HTTP/1.0 connection closes after the response. Never
      // keep open a connection that a Node backend would close.
      if (!hasTrailingHtab(element)) out.connectionKeepAlive = true;
    } else if (t === 'upgrade') out.connectionUpgrade = true;
    else if (t !== '') (out.connectionTokens ??= []).push(t);
  }
}

function fail(out: RequestHead, status: number, reason: string): number {
  out.error = reason;
  return status;
}

/**
 * Finds the end of a request head in `buf` starting the search at `from`.
 * Returns the index just past CRLFCRLF, or -1 when the head is incomplete.
 */
export function findHeadEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf(CRLFCRLF, from);
  return i < 0 ? -1 : i + 4;
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * For an incomplete head: true when the bytes so far can already be rejected
 * (a bare LF or CR, a NUL), so a client sending `\n`-only lines gets its 400
 * at once instead of waiting for client_header_timeout.
 */
export function incompleteHeadIsInvalid(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x0a) {
      if (i === start || buf[i - 1] !== 0x0d) return true;
    } else if (c === 0x0d) {
      if (i + 1 < end && buf[i + 1] !== 0x0a) return true;
    } else if (c === 0) {
      return true;
    }
  }
  return false;
}
