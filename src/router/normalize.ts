/**
 * nginx's URI normalisation ($uri), the form locations are matched against:
 * percent-decoding (including %2F), dot-segment removal and, with
 * merge_slashes on, collapsing "//". A path that climbs above the root or
 * decodes to NUL is invalid (400), so `/api/../admin`, `/%2e%2e/admin` and
 * `/api%2F..%2Fadmin` can only ever match the location their normalised form
 * names. The raw target is still what proxy_pass forwards when it has no URI,
 * exactly as nginx does.
 */

const NEEDS_WORK = /%|\/\.|\/\//;

/**
 * Normalises the path part of a request target (no query). Returns undefined
 * when the path is invalid. The common case (nothing to do) returns the input
 * without allocating.
 */
export function normalizePath(path: string, mergeSlashes = true): string | undefined {
  if (!NEEDS_WORK.test(path)) return path;
  let decoded = path;
  if (path.includes('%')) {
    const d = percentDecode(path);
    if (d === undefined) return undefined;
    decoded = d;
  }
  if (decoded.includes('\0')) return undefined;
  return removeDotSegments(decoded, mergeSlashes);
}

/** Decodes %XX sequences as UTF-8; invalid escapes make the path invalid (nginx: 400). */
export function percentDecode(s: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function removeDotSegments(path: string, mergeSlashes: boolean): string | undefined {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is '' for an absolute path.
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
      continue;
    }
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      if (last) out.push('');
      continue;
    }
    if (seg === '' && mergeSlashes && !last) continue;
    out.push(seg);
  }
  return '/' + out.join('/');
}

/**
 * Splits a request path into path and query at the first '?'. Returns the
 * path; the query is target.slice(path.length + 1).
 */
export function splitQuery(target: string): [path: string, query: string] {
  const q = target.indexOf('?');
  return q < 0 ? [target, ''] : [target.slice(0, q), target.slice(q + 1)];
}

/** Percent-encodes a decoded path for sending upstream (proxy_pass with a URI part). */
export function encodePath(path: string): string {
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g, (ch) => {
    const bytes = Buffer.from(ch, 'utf8');
    let out = '';
    for (const b of bytes) out += '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
    return out;
  });
}
