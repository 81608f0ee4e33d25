/**
 * nginx's `expires` (ngx_http_headers_filter_module) and `charset`
 * (ngx_http_charset_filter_module, without recoding) on every response head,
 * fulcrum's own and proxied ones. Both run only where configured: with
 * neither, the exchange checks two fields that are undefined.
 */
import type { HeaderList } from './downstream.js';

export interface ExpiresRuntime {
  /** access: now + seconds; modified: Last-Modified + seconds; daily: the next time of day `seconds` (local time). */
  readonly mode: 'access' | 'modified' | 'daily' | 'epoch' | 'max';
  /** Signed for access/modified (negative = in the past: "no-cache"); seconds after midnight for daily. */
  readonly seconds: number;
}

export interface CharsetRuntime {
  /** As configured ("utf-8"). */
  readonly charset: string;
  /** Lowercase MIME types it is added to (charset_types); undefined for `charset_types *`. */
  readonly types: ReadonlySet<string> | undefined;
}

/** The statuses nginx's headers filter adds Expires and add_header to (without `always`). */
export function headersFilterApplies(status: number): boolean {
  return status === 200 || status === 201 || status === 204 || status === 206 || status === 301 || status === 302 || status === 303 || status === 304 || status === 307 || status === 308;
}

const EXPIRES_OR_CACHE_CONTROL = /^(?:expires|cache-control):[^\r\n]*\r\n/gim;

/** Sets Expires and Cache-Control (replacing a proxied response's own, as nginx does). */
export function applyExpires(headers: HeaderList, e: ExpiresRuntime, nowMs: number): void {
  let lastModifiedMs = NaN;
  if (e.mode === 'modified') {
    const lm = headers.get('last-modified');
    if (lm !== undefined) lastModifiedMs = Date.parse(lm);
  }
  if (headers.raw !== '') headers.raw = headers.raw.replace(EXPIRES_OR_CACHE_CONTROL, '');
  for (let i = headers.names.length - 1; i >= 0; i--) {
    const lower = headers.names[i]!.toLowerCase();
    if (lower === 'expires' || lower === 'cache-control') {
      headers.names.splice(i, 1);
      headers.values.splice(i, 1);
    }
  }
  const [expires, cacheControl] = expiresValues(e, nowMs, lastModifiedMs);
  headers.add('Expires', expires);
  headers.add('Cache-Control', cacheControl);
}

/** nginx's ngx_http_set_expires: the Expires and Cache-Control values. */
export function expiresValues(e: ExpiresRuntime, nowMs: number, lastModifiedMs: number): [string, string] {
  if (e.mode === 'max') return ['Thu, 31 Dec 2037 23:55:55 GMT', 'max-age=315360000'];
  if (e.mode === 'epoch') return ['Thu, 01 Jan 1970 00:00:01 GMT', 'no-cache'];
  const now = Math.floor(nowMs / 1000);
  let at: number;
  let maxAge: number;
  if (e.mode === 'daily') {
    at = nextTimeOfDay(now, e.seconds);
    maxAge = at - now;
  } else if (e.mode === 'access' || Number.isNaN(lastModifiedMs)) {
    // `modified` without a Last-Modified counts from now, as nginx does.
    at = now + e.seconds;
    maxAge = e.seconds;
  } else {
    at = Math.floor(lastModifiedMs / 1000) + e.seconds;
    maxAge = at - now;
  }
  const expires = new Date(at * 1000).toUTCString();
  return [expires, e.seconds < 0 || maxAge < 0 ? 'no-cache' : `max-age=${maxAge}`];
}

/** nginx's ngx_next_time: the next moment (seconds) when the local time of day is `secondsOfDay`. */
function nextTimeOfDay(now: number, secondsOfDay: number): number {
  const d = new Date(now * 1000);
  d.setHours(0, 0, 0, 0);
  d.setSeconds(secondsOfDay);
  let at = Math.floor(d.getTime() / 1000);
  if (at <= now) {
    d.setDate(d.getDate() + 1);
    d.setHours(0, 0, 0, 0);
    d.setSeconds(secondsOfDay);
    at = Math.floor(d.getTime() / 1000);
  }
  return at;
}

const CONTENT_TYPE_LINE = /^(content-type:[ \t]*)([^\r\n]*)\r\n/im;

/**
 * `charset`: "; charset=X" on a Content-Type in charset_types that names no
 * charset. Not on 301/302: nginx leaves redirects alone (old browsers took
 * the redirect's charset for the next page).
 */
export function applyCharset(headers: HeaderList, c: CharsetRuntime, status: number): void {
  if (status === 301 || status === 302) return;
  for (let i = 0; i < headers.names.length; i++) {
    if (headers.names[i]!.toLowerCase() !== 'content-type') continue;
    const value = withCharset(headers.values[i]!, c);
    if (value !== undefined) headers.values[i] = value;
    return;
  }
  if (headers.raw === '') return;
  const m = CONTENT_TYPE_LINE.exec(headers.raw);
  if (m === null) return;
  const value = withCharset(m[2]!.trimEnd(), c);
  if (value === undefined) return;
  headers.raw = headers.raw.slice(0, m.index) + m[1]! + value + '\r\n' + headers.raw.slice(m.index + m[0].length);
}

function withCharset(contentType: string, c: CharsetRuntime): string | undefined {
  if (/;\s*charset\s*=/i.test(contentType)) return undefined;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === '' || (c.types !== undefined && !c.types.has(type))) return undefined;
  return `${contentType}; charset=${c.charset}`;
}
