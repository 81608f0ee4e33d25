/**
 * nginx's ngx_http_gzip_module: whether a response is compressed
 * (ngx_http_gzip_header_filter and ngx_http_gzip_ok, condition for
 * condition), and a Downstream that compresses the body on its way to the
 * client.
 *
 * Compression is synchronous, on the event loop, as nginx compresses in its
 * worker: each body piece is deflated and flushed (Z_SYNC_FLUSH) before the
 * call returns, which is what nginx does on every upstream read with
 * proxy_buffering off. So the client can decode everything it was sent (a
 * server-sent event arrives as one), borrowed input is never kept, and the
 * drain protocol is the wrapped Downstream's own: a full client buffer is
 * reported to the Exchange by the very call that filled it.
 *
 * Node has no public synchronous streaming deflate (a zlib stream's
 * internal _processChunk closes the engine after one call), so the stream is
 * assembled from one raw deflate per piece: each is primed with the last
 * 32 KB of input as its dictionary, so back-references reach into earlier
 * pieces exactly as in one continuous deflate stream, and each ends with a
 * sync flush (byte-aligned, not final). The gzip header, a final empty block
 * and the CRC-32/length trailer are written around them.
 */
import * as zlib from 'node:zlib';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { crc32Byte } from '../balancer/crc32.js';
import type { RequestHead } from '../http/request-head.js';
import { GzipProxied, type GzipRuntime } from '../runtime/table.js';
import { BodyWrite, type Downstream, type HeaderList } from './downstream.js';

/** What the gzip filter does to one response. */
export const enum GzipVerdict {
  /** Not a candidate: nothing changes. */
  None,
  /** A candidate the client does not get compressed: only `Vary: Accept-Encoding` (with gzip_vary on), as nginx. */
  VaryOnly,
  Compress,
}

/** Response header lookup by lowercase name (ResponseHead and HeaderList both answer it). */
export type ResponseHeaderLookup = (lowerName: string) => string | undefined;

/**
 * ngx_http_gzip_header_filter's conditions, then ngx_http_gzip_ok's.
 * `length`: the response's Content-Length, -1 when unknown. Callers have
 * already excluded header-only responses (HEAD, 204, 304).
 */
export function gzipVerdict(gzip: GzipRuntime, req: RequestHead, status: number, length: number, header: ResponseHeaderLookup): GzipVerdict {
  if (status !== 200 && status !== 403 && status !== 404) return GzipVerdict.None;
  if (length >= 0 && length < gzip.minLength) return GzipVerdict.None;
  const encoding = header('content-encoding');
  if (encoding !== undefined && encoding !== '') return GzipVerdict.None;
  if (gzip.types !== undefined && !gzip.types.has(mimeType(header('content-type')))) return GzipVerdict.None;
  return clientAccepts(gzip, req, header) ? GzipVerdict.Compress : GzipVerdict.VaryOnly;
}

/** The media type of a Content-Type value, lowercase and without parameters ('' when absent). */
function mimeType(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** ngx_http_gzip_ok: Accept-Encoding, msie6, gzip_http_version, gzip_proxied, gzip_disable. */
function clientAccepts(gzip: GzipRuntime, req: RequestHead, header: ResponseHeaderLookup): boolean {
  const accept = req.header('accept-encoding');
  if (accept === undefined || !acceptsGzip(accept)) return false;
  const agent = req.header('user-agent');
  if (gzip.disableMsie6 && agent !== undefined && isOldMsie(agent)) return false;
  if (req.versionMinor === 0 && !gzip.http10) return false;
  if (req.header('via') !== undefined && !proxiedAllowed(gzip.proxied, req, header)) return false;
  if (gzip.disable.length !== 0 && agent !== undefined) {
    for (const re of gzip.disable) if (re.test(agent)) return false;
  }
  return true;
}

/**
 * ngx_http_gzip_accept_encoding: a "gzip" token (case-insensitive, at the
 * start or after a comma or space) whose q-value, if any, is not zero; an
 * invalid q-value refuses, as in nginx.
 */
export function acceptsGzip(value: string): boolean {
  if (value.length < 4) return false;
  const lower = value.toLowerCase();
  let at = -1;
  for (let from = 0; ; from = at + 4) {
    at = lower.indexOf('gzip', from);
    if (at < 0) return false;
    if (at === 0 || lower[at - 1] === ',' || lower[at - 1] === ' ') break;
  }
  let i = at + 4;
  for (; i < lower.length; i++) {
    const c = lower[i];
    if (c === ',') return true;
    if (c === ';') break;
    if (c !== ' ') return false;
  }
  if (i >= lower.length) return true;
  for (i++; i < lower.length; i++) {
    const c = lower[i];
    if (c === 'q') break;
    if (c !== ' ') return false;
  }
  if (i >= lower.length) return true;
  i++;
  if (i + 2 > lower.length || lower[i] !== '=') return false;
  return quality(lower, i + 1) !== 0;
}

/** ngx_http_gzip_quantity, with its arithmetic: 0 means refused or invalid, anything else accepted. */
function quality(s: string, i: number): number {
  const first = s[i++];
  if (first !== '0' && first !== '1') return 0;
  let q = first === '1' ? 100 : 0;
  if (i === s.length) return q;
  const c = s[i++];
  if (c === ',' || c === ' ') return q;
  if (c !== '.') return 0;
  let digits = 0;
  for (; i < s.length; i++) {
    const d = s[i]!;
    if (d === ',' || d === ' ') break;
    if (d < '0' || d > '9') return 0;
    q += d.charCodeAt(0) - 48;
    digits++;
  }
  if (q > 100 || digits > 3) return 0;
  return q;
}

/** nginx's msie6 flag: MSIE 4.x and 5.x, and 6.x unless "SV1" follows (XP SP2 fixed its gzip handling). */
function isOldMsie(agent: string): boolean {
  const at = agent.indexOf('MSIE ');
  if (at < 0 || at + 7 >= agent.length || agent[at + 6] !== '.') return false;
  const major = agent[at + 5];
  if (major === '4' || major === '5') return true;
  return major === '6' && !agent.includes('SV1', at + 8);
}

/** gzip_proxied for a request that came through a proxy (it has Via), as ngx_http_gzip_ok decides. */
function proxiedAllowed(p: number, req: RequestHead, header: ResponseHeaderLookup): boolean {
  if ((p & GzipProxied.Off) !== 0) return false;
  if ((p & GzipProxied.Any) !== 0) return true;
  if ((p & GzipProxied.Auth) !== 0 && req.header('authorization') !== undefined) return true;
  const expires = header('expires');
  if (expires !== undefined) {
    if ((p & GzipProxied.Expired) === 0) return false;
    const at = Date.parse(expires);
    if (Number.isNaN(at)) return false;
    const dateText = header('date');
    const now = dateText === undefined ? Date.now() : Date.parse(dateText);
    if (Number.isNaN(now)) return false;
    return Math.floor(at / 1000) < Math.floor(now / 1000);
  }
  const cacheControl = header('cache-control');
  if (cacheControl !== undefined) {
    const directives = cacheControl.toLowerCase();
    if ((p & GzipProxied.NoCache) !== 0 && hasDirective(directives, 'no-cache')) return true;
    if ((p & GzipProxied.NoStore) !== 0 && hasDirective(directives, 'no-store')) return true;
    if ((p & GzipProxied.Private) !== 0 && hasDirective(directives, 'private')) return true;
    return false;
  }
  if ((p & GzipProxied.NoLastModified) !== 0 && header('last-modified') !== undefined) return false;
  if ((p & GzipProxied.NoEtag) !== 0 && header('etag') !== undefined) return false;
  return true;
}

function hasDirective(list: string, name: string): boolean {
  for (const part of list.split(',')) {
    const token = part.trim();
    if (token === name || token.startsWith(name + '=')) return true;
  }
  return false;
}

// ---------------------------------------------------------------- the compressed stream

/** nginx's gzip header: no name, no time, Unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3]);
/** An empty final block with fixed codes: ends a deflate stream left open by sync flushes. */
const FINAL_BLOCK = [0x03, 0x00];
/** Deflate's window: the most history a back-reference can reach. */
const WINDOW = 32 * 1024;
const EMPTY = Buffer.alloc(0);

/** zlib.crc32 came with Node 20.15; before it, a table walk. */
const crc32: (data: Buffer, value: number) => number =
  typeof zlib.crc32 === 'function'
    ? (data, value) => zlib.crc32(data, value)
    : (data, value) => {
        let c = ~value;
        for (let i = 0; i < data.length; i++) c = crc32Byte(c, data[i]!);
        return ~c >>> 0;
      };

/** One gzip member, written piece by piece; every piece's output decodes on its own arrival. */
export class GzipEncoder {
  private crc = 0;
  private size = 0;
  private started = false;
  /** The last WINDOW bytes of input: the next piece's dictionary. */
  private history: Buffer = EMPTY;

  constructor(private readonly level: number) {}

  /** Compresses and flushes `input`, which is only read during the call. */
  write(input: Buffer): Buffer {
    const options: zlib.ZlibOptions = { level: this.level, finishFlush: zlib.constants.Z_SYNC_FLUSH };
    if (this.history.length !== 0) options.dictionary = this.history;
    const deflated = zlib.deflateRawSync(input, options);
    this.crc = crc32(input, this.crc);
    this.size = (this.size + input.length) >>> 0;
    if (input.length >= WINDOW) {
      this.history = Buffer.from(input.subarray(input.length - WINDOW));
    } else {
      const keep = Math.min(this.history.length, WINDOW - input.length);
      this.history = Buffer.concat([this.history.subarray(this.history.length - keep), input]);
    }
    if (this.started) return deflated;
    this.started = true;
    return Buffer.concat([GZIP_HEADER, deflated]);
  }

  /** The end of the stream: the final block and the trailer (with the header if nothing was written). */
  finish(): Buffer {
    const out = Buffer.allocUnsafe((this.started ? 0 : GZIP_HEADER.length) + 10);
    let at = 0;
    if (!this.started) at = GZIP_HEADER.copy(out, 0);
    this.started = true;
    out[at] = FINAL_BLOCK[0]!;
    out[at + 1] = FINAL_BLOCK[1]!;
    out.writeUInt32LE(this.crc >>> 0, at + 2);
    out.writeUInt32LE(this.size, at + 6);
    this.history = EMPTY;
    return out;
  }
}

/**
 * Header changes for a compressed response (ngx_http_gzip_header_filter):
 * Content-Encoding set, Accept-Ranges removed (ranges of the encoded body
 * are not offered), a strong ETag weakened (nginx >= 1.7.3) and an invalid
 * one removed. Content-Length is not in the list: the Downstream writes it
 * from the length it is given, which becomes -1.
 */
export function compressedHeaders(headers: HeaderList): void {
  if (headers.raw !== '') {
    let raw = '';
    for (const line of headers.raw.split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      if (name === 'accept-ranges') continue;
      if (name === 'etag') {
        const weak = weakEtag(line.slice(colon + 1).trim());
        if (weak !== undefined) raw += line.slice(0, colon) + ': ' + weak + '\r\n';
        continue;
      }
      raw += line + '\r\n';
    }
    headers.raw = raw;
  }
  const names = headers.names;
  const values = headers.values;
  if (names.length !== 0) {
    const keptNames: string[] = [];
    const keptValues: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!.toLowerCase();
      let value: string | undefined = values[i]!;
      if (name === 'accept-ranges') continue;
      if (name === 'etag') value = weakEtag(value);
      if (value === undefined) continue;
      keptNames.push(names[i]!);
      keptValues.push(value);
    }
    headers.names = keptNames;
    headers.values = keptValues;
  }
  headers.add('Content-Encoding', 'gzip');
}

/** ngx_http_weak_etag: W/ kept, "x" -> W/"x", anything else dropped. */
function weakEtag(etag: string): string | undefined {
  if (etag.startsWith('W/')) return etag;
  if (etag.startsWith('"')) return 'W/' + etag;
  return undefined;
}

/**
 * The client side of a compressed response: wraps the connection's
 * Downstream for one response, and hands it compressed, flushed pieces.
 */
export class GzipDownstream implements Downstream {
  private encoder: GzipEncoder | undefined;

  constructor(
    private readonly inner: Downstream,
    level: number,
  ) {
    this.encoder = new GzipEncoder(level);
  }

  get remoteAddr(): string {
    return this.inner.remoteAddr;
  }
  get remotePort(): number {
    return this.inner.remotePort;
  }
  get localAddr(): string {
    return this.inner.localAddr;
  }
  get localPort(): number {
    return this.inner.localPort;
  }
  get scheme(): 'http' | 'https' {
    return this.inner.scheme;
  }
  get tlsSocket(): TLSSocket | undefined {
    return this.inner.tlsSocket;
  }
  get connectionId(): number {
    return this.inner.connectionId;
  }
  get requestCount(): number {
    return this.inner.requestCount;
  }
  get canChunk(): boolean {
    return this.inner.canChunk;
  }
  get protocol(): string {
    return this.inner.protocol;
  }

  responseHeaders(): HeaderList {
    return this.inner.responseHeaders();
  }

  sendHead(status: number, reason: string, headers: HeaderList, _length: number, noBody: boolean, body: Buffer | null, end: boolean): boolean {
    compressedHeaders(headers);
    let out: Buffer | null = null;
    const encoder = this.encoder!;
    if (body !== null && body.length !== 0) out = encoder.write(body);
    if (end) {
      const tail = encoder.finish();
      out = out === null ? tail : Buffer.concat([out, tail]);
      this.encoder = undefined;
    }
    // The encoded length is unknown until the end: chunked on HTTP/1.1, close-delimited on 1.0, framed by HTTP/2.
    return this.inner.sendHead(status, reason, headers, -1, noBody, out, end);
  }

  sendBody(chunk: Buffer): boolean {
    return (this.lendBody(chunk) & BodyWrite.Blocked) === 0;
  }

  /** The input is consumed before returning, so it is never Kept; the output is ours to lend on. */
  lendBody(chunk: Buffer): number {
    const encoder = this.encoder;
    if (encoder === undefined || chunk.length === 0) return 0;
    return this.inner.lendBody(encoder.write(chunk)) & BodyWrite.Blocked;
  }

  keepReadBuffer(): void {
    this.inner.keepReadBuffer();
  }

  readBuffersWrittenOut(): void {
    this.inner.readBuffersWrittenOut();
  }

  endBody(): void {
    const encoder = this.encoder;
    if (encoder !== undefined) {
      this.encoder = undefined;
      this.inner.lendBody(encoder.finish());
    }
    this.inner.endBody();
  }

  abort(reason: string): void {
    this.encoder = undefined; // its state is plain buffers: nothing else to release
    this.inner.abort(reason);
  }

  pauseRequestBody(): void {
    this.inner.pauseRequestBody();
  }
  resumeRequestBody(): void {
    this.inner.resumeRequestBody();
  }
  sendContinue(): void {
    this.inner.sendContinue();
  }
  takeOverSocket(): { socket: Socket; buffered: Buffer | null } | undefined {
    return undefined; // a compressed response is never a 101
  }
  connectionsFromClient(): number {
    return this.inner.connectionsFromClient();
  }
  waitForDrain(): Promise<void> {
    return this.inner.waitForDrain();
  }
}
