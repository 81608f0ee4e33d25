/**
 * HTTP clients for tests: `request` goes through node:http/https (a fresh
 * connection per request unless an agent is given); `rawRequest` writes bytes
 * on a bare TCP or TLS socket and parses whatever comes back, so tests can
 * check pipelining, framing and whether the connection was closed.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { collect } from './wait.js';

export interface ClientTlsOptions {
  /** Certificates to trust (PEM), e.g. a test CA or a self-signed certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** SNI name and the name the certificate is checked against. */
  servername?: string;
  /** Default true. */
  rejectUnauthorized?: boolean;
  /** Client certificate and key (PEM), for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface RequestOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default GET. */
  method?: string;
  /** Request target, e.g. `/api/hello?x=1`. */
  path: string;
  headers?: http.OutgoingHttpHeaders;
  /** A stream is piped (for large uploads); Content-Length or chunked framing is up to the caller's headers. */
  body?: string | Buffer | Readable;
  /** Present: HTTPS with these options. */
  tls?: ClientTlsOptions;
  /** Default false: a fresh connection per request. Pass `keepAliveAgent()` to reuse connections. */
  agent?: false | http.Agent;
  /** Socket inactivity limit, default 10 s: a hung proxy fails the test instead of stalling it. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  httpVersion: string;
  trailers: NodeJS.Dict<string>;
}

/** An agent that keeps connections open between requests (https when `tls` is set). Destroy it after the test. */
export function keepAliveAgent(opts: { tls?: boolean; maxSockets?: number } = {}): http.Agent {
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? Infinity };
  return opts.tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
}

/**
 * Sends a request and resolves once the response head arrives, leaving the
 * body unread: for tests that watch a response stream in (SSE, chunked).
 */
export function openRequest(opts: RequestOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const requestOptions: https.RequestOptions = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port,
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: opts.headers,
      agent: opts.agent ?? false,
      ...opts.tls,
    };
    const req = (opts.tls ? https : http).request(requestOptions);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no activity for ${timeoutMs} ms on ${requestOptions.method} ${opts.path}`)));
    req.once('error', reject);
    req.once('response', resolve);
    sendBody(req, opts.body);
  });
}

function sendBody(req: http.ClientRequest, body: RequestOptions['body']): void {
  if (body instanceof Readable) {
    body.once('error', (err) => req.destroy(err));
    body.pipe(req);
  } else {
    req.end(body);
  }
}

/** Sends a request and resolves with the whole response. */
export async function request(opts: RequestOptions): Promise<HttpResponse> {
  const res = await openRequest(opts);
  const body = await collect(res);
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    rawHeaders: res.rawHeaders,
    body,
    httpVersion: res.httpVersion,
    trailers: res.trailers,
  };
}

// ---------------------------------------------------------------------------
// Raw requests

export interface RawRequestOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Quiet period: collection stops after this long without data from the
   * server (default 300 ms). Raise it when a response is expected to be slow.
   */
  timeoutMs?: number;
  /** Hard cap on the whole exchange, default 30 s. */
  maxMs?: number;
  /** Present: TLS with these options. */
  tls?: ClientTlsOptions;
  /** Half-close after writing (a FIN, or TLS's close_notify and then a FIN): the client says it sends nothing more. */
  endAfterWrite?: boolean;
  /**
   * The methods of the requests sent, in order, when one is HEAD: a response
   * to HEAD has headers that describe a body it does not carry.
   */
  methods?: string[];
}

export interface RawExchange {
  /** Every byte the server sent. */
  data: Buffer;
  /** The server closed the connection (FIN or reset) before the quiet period ran out. */
  closed: boolean;
  /** Set when the connection failed, e.g. `ECONNRESET`. */
  errorCode?: string;
  responses: ParsedRawResponse[];
}

export interface ParsedRawResponse {
  httpVersion: string;
  status: number;
  reason: string;
  /** Lower-cased names; repeated fields joined with `, `. */
  headers: Record<string, string>;
  /** In the order and case received. */
  rawHeaders: Array<[string, string]>;
  body: Buffer;
  chunked: boolean;
  /** False when the bytes ended (or the framing broke) before the message did. */
  complete: boolean;
  trailers: Record<string, string>;
}

/**
 * Writes `bytes` on a new connection and collects the answer until the server
 * closes or goes quiet. Requests must be complete HTTP/1.1, e.g.
 * `GET / HTTP/1.1\r\nHost: x\r\n\r\n` (Node answers 400 without Host).
 */
export function rawRequest(port: number, bytes: string | Buffer, opts: RawRequestOptions = {}): Promise<RawExchange> {
  const host = opts.host ?? '127.0.0.1';
  const socket = opts.tls
    ? tls.connect({ host, port, ...opts.tls, servername: opts.tls.servername ?? (net.isIP(host) ? undefined : host) })
    : net.connect({ host, port });
  const quietMs = opts.timeoutMs ?? 300;
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    let closed = false;
    let errorCode: string | undefined;
    const finish = () => {
      clearTimeout(quietTimer);
      clearTimeout(capTimer);
      socket.destroy();
      const data = Buffer.concat(chunks);
      resolve({ data, closed, errorCode, responses: parseHttpResponses(data, { methods: opts.methods, connectionClosed: closed }) });
    };
    const quietTimer = setTimeout(finish, quietMs);
    const capTimer = setTimeout(finish, opts.maxMs ?? 30_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      quietTimer.refresh();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      errorCode = err.code ?? err.message;
    });
    socket.on('end', () => { closed = true; });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    if (opts.endAfterWrite) socket.end(bytes);
    else socket.write(bytes);
  });
}

export interface ParseOptions {
  /** Methods of the requests sent, in order (see RawRequestOptions.methods). */
  methods?: readonly string[] | undefined;
  /** Whether the connection was closed after `data`: a body delimited by the close is complete only then. Default true. */
  connectionClosed?: boolean;
}

/** Splits bytes received on one connection into HTTP/1.1 responses. Parsing stops at anything that is not one. */
export function parseHttpResponses(data: Buffer, opts: ParseOptions = {}): ParsedRawResponse[] {
  const methods = opts.methods ?? [];
  const responses: ParsedRawResponse[] = [];
  let offset = 0;
  let requestIndex = 0;
  while (offset < data.length) {
    const head = parseHead(data, offset);
    if (!head) break;
    const interim = head.status >= 100 && head.status < 200;
    const framing = bodyFraming(head, interim ? undefined : methods[requestIndex]);
    const body = readBody(data, head.bodyStart, framing, opts.connectionClosed ?? true);
    responses.push({ ...head.response, body: body.bytes, chunked: framing.kind === 'chunked', complete: body.complete, trailers: body.trailers });
    if (!body.complete) break;
    if (!interim) requestIndex++;
    offset = body.end;
  }
  return responses;
}

interface ParsedHead {
  status: number;
  bodyStart: number;
  response: Pick<ParsedRawResponse, 'httpVersion' | 'status' | 'reason' | 'headers' | 'rawHeaders'>;
}

const STATUS_LINE = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/;

function parseHead(data: Buffer, offset: number): ParsedHead | undefined {
  const end = data.indexOf('\r\n\r\n', offset);
  if (end < 0) return undefined;
  const [statusLine = '', ...fieldLines] = data.subarray(offset, end).toString('latin1').split('\r\n');
  const match = STATUS_LINE.exec(statusLine);
  if (!match) return undefined;
  const rawHeaders = fieldLines.map(splitField);
  const status = Number(match[2]);
  return {
    status,
    bodyStart: end + 4,
    response: { httpVersion: match[1]!, status, reason: match[3] ?? '', headers: joinFields(rawHeaders), rawHeaders },
  };
}

function splitField(line: string): [string, string] {
  const colon = line.indexOf(':');
  return colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1).trim()];
}

function joinFields(pairs: ReadonlyArray<[string, string]>): Record<string, string> {
  const joined: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    joined[key] = key in joined ? `${joined[key]}, ${value}` : value;
  }
  return joined;
}

type Framing =
  | { kind: 'none' }
  | { kind: 'chunked' }
  | { kind: 'length'; length: number }
  | { kind: 'until-close' };

/** How the body is delimited (RFC 9112 6.3). */
function bodyFraming(head: ParsedHead, requestMethod: string | undefined): Framing {
  const { status, response: { headers } } = head;
  if (status < 200 || status === 204 || status === 304 || requestMethod?.toUpperCase() === 'HEAD') return { kind: 'none' };
  if (/(?:^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'] ?? '')) return { kind: 'chunked' };
  const length = headers['content-length'];
  if (length !== undefined) return { kind: 'length', length: Number(length) };
  return { kind: 'until-close' };
}

interface ReadBody {
  bytes: Buffer;
  complete: boolean;
  /** Offset just past the body. */
  end: number;
  trailers: Record<string, string>;
}

function readBody(data: Buffer, start: number, framing: Framing, connectionClosed: boolean): ReadBody {
  switch (framing.kind) {
    case 'none':
      return { bytes: Buffer.alloc(0), complete: true, end: start, trailers: {} };
    case 'length': {
      if (!Number.isSafeInteger(framing.length) || framing.length < 0) {
        return { bytes: Buffer.alloc(0), complete: false, end: data.length, trailers: {} };
      }
      const end = Math.min(start + framing.length, data.length);
      return { bytes: data.subarray(start, end), complete: end === start + framing.length, end, trailers: {} };
    }
    case 'until-close':
      return { bytes: data.subarray(start), complete: connectionClosed, end: data.length, trailers: {} };
    case 'chunked':
      return readChunkedBody(data, start);
  }
}

function readChunkedBody(data: Buffer, start: number): ReadBody {
  const pieces: Buffer[] = [];
  const incomplete = (): ReadBody => ({ bytes: Buffer.concat(pieces), complete: false, end: data.length, trailers: {} });
  let pos = start;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', pos);
    if (lineEnd < 0) return incomplete();
    const sizeText = data.subarray(pos, lineEnd).toString('latin1').split(';')[0]!.trim();
    if (!/^[0-9a-f]+$/i.test(sizeText)) return incomplete();
    const size = parseInt(sizeText, 16);
    pos = lineEnd + 2;
    if (size === 0) break;
    if (pos + size + 2 > data.length) {
      pieces.push(data.subarray(pos, Math.min(pos + size, data.length)));
      return incomplete();
    }
    pieces.push(data.subarray(pos, pos + size));
    if (data.toString('latin1', pos + size, pos + size + 2) !== '\r\n') return incomplete();
    pos += size + 2;
  }
  // Trailer section: fields until an empty line.
  const trailerPairs: Array<[string, string]> = [];
  for (;;) {
    const lineEnd = data.indexOf('\r\n', pos);
    if (lineEnd < 0) return incomplete();
    if (lineEnd === pos) break;
    trailerPairs.push(splitField(data.subarray(pos, lineEnd).toString('latin1')));
    pos = lineEnd + 2;
  }
  return { bytes: Buffer.concat(pieces), complete: true, end: pos + 2, trailers: joinFields(trailerPairs) };
}
