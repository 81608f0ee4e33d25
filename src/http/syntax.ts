/**
 * Character classes and small helpers shared by the HTTP/1.1 codecs
 * (RFC 9110 section 5, RFC 9112 sections 2-7). The wire codecs import nothing
 * from the rest of fulcrum, so the upstream pool and the listeners can both
 * use them.
 */

/** token = 1*tchar (RFC 9110 5.6.2). */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Any byte that may never appear in a message head once lines are split:
 * NUL and the other controls except HTAB, plus DEL. CR and LF are allowed
 * here because they delimit lines; bare ones are caught by BARE_CR_OR_LF.
 */
export const FORBIDDEN_HEAD_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** A CR not followed by LF, or an LF not preceded by CR (RFC 9112 2.2: we reject both). */
export const BARE_CR_OR_LF = /\r(?!\n)|(?<!\r)\n/;

/**
 * A whole request head that needs no further character checks: request line,
 * then `name:value` lines of token names and field-value octets, separated by
 * CRLF (so no bare CR or LF, no NUL, no obs-fold, no space before a colon).
 * One linear regex pass replaces two per header line on the common path; a
 * head that does not match goes through the line-by-line checks, which give
 * the precise error.
 */
export const WELL_FORMED_REQUEST_HEAD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x5b\x5d-\x7e]+ HTTP\/1\.[01](?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*$/;

/** The same for a response head. */
export const WELL_FORMED_RESPONSE_HEAD = /^HTTP\/1\.[01] [1-9][0-9][0-9](?: [\t\x20-\x7e\x80-\xff]*)?(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*$/;

/** The octets a field value may hold: HTAB, SP, VCHAR, obs-text (RFC 9110 5.5). CR/LF/NUL never. */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether a character code is optional whitespace (SP or HTAB). */
export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** `text.slice(start, end)` without leading and trailing OWS, in one slice (a header value: one string per field, not two). */
export function sliceTrimmingOws(text: string, start: number, end: number): string {
  while (start < end && isOws(text.charCodeAt(start))) start++;
  while (end > start && isOws(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/**
 * Whether `text.slice(start, end)` equals `lower` (a lowercase ASCII name)
 * ignoring ASCII case, without making the substring.
 */
export function equalsLowercase(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    let c = text.charCodeAt(start + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** Trims SP/HTAB from both ends without allocating when there is nothing to trim. */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * Parses a Content-Length value strictly: 1*DIGIT only (no sign, no spaces
 * inside, no list). Returns -1 when invalid. Values above 2^53 are refused,
 * which is stricter than llhttp's 2^64 and far beyond any real body.
 */
export function parseContentLength(value: string): number {
  const len = value.length;
  if (len === 0 || len > 16) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n <= Number.MAX_SAFE_INTEGER ? n : -1;
}

/**
 * Whether the whitespace at the end of a raw (untrimmed) field value holds an
 * HTAB. llhttp only skips SP after a Content-Length or Transfer-Encoding
 * value and answers 400 for `Content-Length: 5<HTAB>` and
 * `Transfer-Encoding: chunked<HTAB>`; fulcrum refuses them too, so that it
 * never accepts framing a Node backend would reject
 * (test/unit/http-differential.test.ts).
 */
export function hasTrailingHtab(raw: string): boolean {
  for (let i = raw.length - 1; i >= 0; i--) {
    const c = raw.charCodeAt(i);
    if (c === 0x09) return true;
    if (c !== 0x20) return false;
  }
  return false;
}

/**
 * Splits a comma-separated header list (Connection, Transfer-Encoding) into
 * lowercase trimmed elements. Empty elements are kept as '' so callers can
 * reject `,chunked` style values where that matters.
 */
export function splitList(value: string): string[] {
  const parts = value.split(',');
  for (let i = 0; i < parts.length; i++) parts[i] = trimOws(parts[i]!).toLowerCase();
  return parts;
}

