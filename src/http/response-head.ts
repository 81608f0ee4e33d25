/**
 * A strict HTTP/1.x response-head parser for upstream responses (RFC 9112).
 * Anything ambiguous makes the response invalid: the proxy answers 502 and
 * never reuses that upstream connection (RFC 9112 6.3), as nginx and HAProxy
 * do for `Transfer-Encoding: chunked, chunked`, CL+TE, duplicate CL.
 */
import { HeaderLines } from './header-lines.js';
import { WELL_FORMED_RESPONSE_HEAD, BARE_CR_OR_LF, FIELD_VALUE, FORBIDDEN_HEAD_CHAR, TOKEN, parseContentLength, splitList } from './syntax.js';

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

export class ResponseHead extends HeaderLines {
  versionMinor = 1;
  status = 0;
  reason = '';
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  connectionTokens: string[] | null = null;
  /** The `timeout=N` hint of a Keep-Alive header, in ms; -1 when absent. */
  keepAliveTimeoutMs = -1;
  error = '';

  constructor(readonly maxHeaders = DEFAULT_MAX_HEADERS) {
    super();
  }

  reset(): void {
    this.versionMinor = 1;
    this.status = 0;
    this.reason = '';
    this.clearLines();
    this.contentLength = -1;
    this.chunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.connectionTokens = null;
    this.keepAliveTimeoutMs = -1;
    this.error = '';
  }

  /** Whether the upstream lets this connection be reused after the response. */
  get keepAlive(): boolean {
    return this.versionMinor === 1 ? !this.connectionClose : this.connectionKeepAlive && !this.connectionClose;
  }
}

const DEFAULT_MAX_HEADERS = 200;

/**
 * Parses a response head (latin1, without the final CRLFCRLF) into `out`,
 * which refuses more than its `maxHeaders` fields. Returns true when valid;
 * otherwise false with `out.error` set.
 */
export function parseResponseHead(head: string, out: ResponseHead): boolean {
  // Common case: one regex pass validates every character of the head.
  const checked = WELL_FORMED_RESPONSE_HEAD.test(head);
  if (!checked) {
    if (FORBIDDEN_HEAD_CHAR.test(head)) return fail(out, 'control character in response head');
    if (BARE_CR_OR_LF.test(head)) return fail(out, 'bare CR or LF in response head');
  }
  out.text = head;
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  if (checked) {
    out.versionMinor = head.charCodeAt(7) - 48;
    out.status = (head.charCodeAt(9) - 48) * 100 + (head.charCodeAt(10) - 48) * 10 + (head.charCodeAt(11) - 48);
    out.reason = lineEnd > 13 ? head.slice(13, lineEnd) : '';
  } else {
    const m = STATUS_LINE.exec(head.slice(0, lineEnd));
    if (m === null) return fail(out, 'invalid status line');
    out.versionMinor = m[1] === '1' ? 1 : 0;
    out.status = +m[2]!;
    out.reason = m[3] ?? '';
  }

  let teCount = 0;
  let clCount = 0;
  let pos = lineEnd + 2;
  while (pos < head.length) {
    let end = head.indexOf('\r\n', pos);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', pos);
    if (!checked) {
      if (colon < 0 || colon >= end) return fail(out, 'header line without a colon');
      if (!TOKEN.test(head.slice(pos, colon))) return fail(out, 'invalid header name');
      if (!FIELD_VALUE.test(head.slice(colon + 1, end))) return fail(out, 'invalid header value');
    }
    const i = out.count;
    if (i >= out.maxHeaders) return fail(out, 'too many header fields');
    out.addLine(pos, colon, end);
    const nameLength = colon - pos;
    pos = end + 2;
    // Only the fields that frame the response or govern the connection are read here.
    switch (nameLength) {
      case 14:
        if (!out.nameIs(i, 'content-length')) break;
        clCount++;
        out.contentLength = parseContentLength(out.value(i));
        if (out.contentLength < 0) return fail(out, 'invalid Content-Length');
        break;
      case 17: {
        if (!out.nameIs(i, 'transfer-encoding')) break;
        teCount++;
        const value = out.value(i);
        if (value.length !== 7 || value.toLowerCase() !== 'chunked') return fail(out, 'unsupported Transfer-Encoding');
        out.chunked = true;
        break;
      }
      case 10: {
        if (out.nameIs(i, 'keep-alive')) {
          out.keepAliveTimeoutMs = parseKeepAliveTimeout(out.value(i));
          break;
        }
        if (!out.nameIs(i, 'connection')) break;
        const value = out.value(i);
        if (value.length === 10 && value.toLowerCase() === 'keep-alive') {
          out.connectionKeepAlive = true;
          break;
        }
        if (value.length === 5 && value.toLowerCase() === 'close') {
          out.connectionClose = true;
          break;
        }
        for (const t of splitList(value)) {
          if (t === 'close') out.connectionClose = true;
          else if (t === 'keep-alive') out.connectionKeepAlive = true;
          else if (t === 'upgrade') out.connectionUpgrade = true;
          else if (t !== '') (out.connectionTokens ??= []).push(t);
        }
        break;
      }
    }
  }
  if (clCount > 1) return fail(out, 'duplicate Content-Length');
  if (teCount > 1) return fail(out, 'duplicate Transfer-Encoding');
  if (teCount > 0 && clCount > 0) return fail(out, 'both Content-Length and Transfer-Encoding');
  if ((out.status === 204 || out.status === 304 || out.status < 200) && (out.chunked || out.contentLength > 0)) {
    // RFC 9110 6.4.1: these never have content. 304 may carry the Content-Length
    // of the representation, so only a 204/1xx with framing is an error.
    if (out.status !== 304) return fail(out, `status ${out.status} with a body`);
  }
  return true;
}

/** Reads `timeout=N` (seconds) from a Keep-Alive header (RFC 2068 19.7.1.1); -1 when absent or invalid. */
export function parseKeepAliveTimeout(value: string): number {
  const m = KEEP_ALIVE_TIMEOUT.exec(value);
  return m === null ? -1 : +m[1]! * 1000;
}

const KEEP_ALIVE_TIMEOUT = /(?:^|,)[ \t]*timeout=([0-9]{1,6})[ \t]*(?:,|$)/i;

function fail(out: ResponseHead, reason: string): boolean {
  out.error = reason;
  return false;
}
