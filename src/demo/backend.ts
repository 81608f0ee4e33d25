/**
 * The demo backend: a small HTTP application standing in for the seed's Spring
 * backend (the three `backend` replicas behind nginx). `fulcrum demo` runs it
 * as child processes, and fulcrum's integration tests use it as a real backend.
 *
 * As a process:
 *   node dist/src/demo/backend.js --port 0 --name backend_1 [--host 127.0.0.1] [--keep-alive-timeout MS]
 * prints exactly one JSON line on stdout once it listens,
 *   {"event":"listening","name":"backend_1","port":12345,"pid":4242}
 * and exits 0 after closing on SIGTERM or SIGINT (or when the parent that
 * spawned it with an IPC channel goes away, so no orphan outlives a test).
 *
 * Every route also answers under `/api`, because nginx's
 * `location /api { proxy_pass http://u; }` forwards the path unchanged.
 * Every response, even a WebSocket handshake, names the replica in `X-Backend`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface BackendOptions {
  /** 0 picks an ephemeral port. */
  port: number;
  /** Defaults to 127.0.0.1: a demo backend has no business on other interfaces. */
  host?: string;
  /** Replica name, e.g. `backend_1`; sent in `X-Backend` and in every body that names the replica. */
  name: string;
  /**
   * Idle keep-alive timeout. Node's default (5 s) is kept unless set: real
   * backends close idle connections, and fulcrum must handle a request that
   * races that close.
   */
  keepAliveTimeoutMs?: number;
  /**
   * What `/crash` does. `exit-process` (the default) is a real crash. In-process
   * users (unit tests) may choose `close-server`: every connection is dropped
   * and the server stops listening, which is what a dead process looks like
   * from the network, without killing the test runner.
   */
  crash?: 'exit-process' | 'close-server';
}

export interface RunningBackend {
  readonly name: string;
  readonly port: number;
  readonly server: http.Server;
  /** Stops listening and drops every open connection, WebSockets included. */
  close(): Promise<void>;
}

/** Exit status when the port is taken, so a supervisor can tell it from a crash (98 is EADDRINUSE's errno on Linux). */
export const EXIT_ADDRESS_IN_USE = 98;

/** `/bytes` and `/chunked` bodies are streamed in pieces of this size. */
export const PIECE_SIZE = 64 * 1024;

const DEFAULT_HOST = '127.0.0.1';

/** Mutable state of one backend instance (one per process when run as a process). */
interface BackendState {
  readonly name: string;
  port: number;
  healthy: boolean;
  /** Requests received per path as sent (e.g. `/api/echo`), for tests that prove a request arrived exactly once. */
  readonly requestCounts: Map<string, number>;
  readonly upgradedSockets: Set<Duplex>;
  crash(): void;
}

/** One request being answered. `path` is the pathname without its `/api` prefix. */
interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  readonly path: string;
  readonly state: BackendState;
}

type Handler = (exchange: Exchange) => void | Promise<void>;

/** A query parameter that is not a number in range: answered with 400. */
class BadRequest extends Error {}

// ---------------------------------------------------------------------------
// Server lifecycle

export async function startBackend(opts: BackendOptions): Promise<RunningBackend> {
  const server = http.createServer();
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const state: BackendState = {
    name: opts.name,
    port: opts.port,
    healthy: true,
    requestCounts: new Map(),
    upgradedSockets: new Set(),
    crash: opts.crash === 'close-server' ? () => void closeServer(server, state).catch(() => {}) : () => process.exit(1),
  };
  server.on('request', (req, res) => handleRequest(state, req, res));
  server.on('upgrade', (req, socket, head) => handleUpgrade(state, req, socket, head));
  state.port = await listen(server, opts.port, opts.host ?? DEFAULT_HOST);
  return {
    name: opts.name,
    port: state.port,
    server,
    close: () => closeServer(server, state),
  };
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server, state: BackendState): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => {
      const alreadyClosed = (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_SERVER_NOT_RUNNING';
      if (err && !alreadyClosed) reject(err);
      else resolve();
    });
    // close() alone waits for keep-alive and hanging requests; a backend going away does not.
    server.closeAllConnections();
    for (const socket of state.upgradedSockets) socket.destroy();
  });
}

// ---------------------------------------------------------------------------
// Routing

const routes: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['/', hello],
  ['/hello', hello],
  ['/whoami', whoami],
  ['/echo', echo],
  ['/stream', serverSentEvents],
  ['/chunked', chunked],
  ['/slow', slow],
  ['/bytes', bytes],
  ['/crash', ({ state }) => state.crash()],
  ['/hang', () => {}],
  ['/count', count],
  ['/count/reset', countReset],
  ['/healthz', healthz],
  ['/healthz/fail', healthzToggle],
]);

/** Paths that read the request counters; they are not counted themselves, so a test sees only its own traffic. */
const uncountedPaths = new Set(['/count', '/count/reset']);

const STATUS_PATH = /^\/status\/(\d{3})$/;

function findHandler(path: string): Handler {
  return routes.get(path) ?? (STATUS_PATH.test(path) ? status : notFound);
}

/** nginx's `location /api { proxy_pass http://u; }` forwards `/api/...` unchanged, so `/api/x` means `/x`. */
function withoutApiPrefix(pathname: string): string {
  if (pathname === '/api') return '/';
  return pathname.startsWith('/api/') ? pathname.slice('/api'.length) : pathname;
}

function parseTarget(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://backend.invalid');
  } catch {
    return undefined;
  }
}

function countRequest(state: BackendState, pathname: string): void {
  state.requestCounts.set(pathname, (state.requestCounts.get(pathname) ?? 0) + 1);
}

function handleRequest(state: BackendState, req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('X-Backend', state.name);
  const url = parseTarget(req.url);
  if (!url) {
    req.resume();
    sendJson(res, 400, { error: 'bad request target', name: state.name });
    return;
  }
  const path = withoutApiPrefix(url.pathname);
  if (!uncountedPaths.has(path)) countRequest(state, url.pathname);
  const handler = findHandler(path);
  // Only /echo reads the body; drain it elsewhere so the connection stays reusable.
  if (handler !== echo) req.resume();
  Promise.resolve()
    .then(() => handler({ req, res, url, path, state }))
    .catch((err: unknown) => answerError(res, err));
}

function answerError(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const statusCode = err instanceof BadRequest ? 400 : 500;
  sendJson(res, statusCode, { error: err instanceof Error ? err.message : String(err) });
}

// ---------------------------------------------------------------------------
// Responses

function sendText(res: http.ServerResponse, statusCode: number, text: string): void {
  res.writeHead(statusCode, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendJson(res: http.ServerResponse, statusCode: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(statusCode, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** `req.rawHeaders` as `[name, value]` pairs, in the order and case received. */
function headerPairs(rawHeaders: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return pairs;
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BadRequest(`query parameter ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Resolves once the response can take more data, or its connection is gone. */
function drainedOrClosed(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Writes `count` pieces, the first at once and then one every `intervalMs`,
 * and ends the response after the last. Stops when the client goes away.
 */
function writePeriodically(
  res: http.ServerResponse,
  count: number,
  intervalMs: number,
  piece: (index: number) => string | Buffer,
): void {
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const writeNext = () => {
    if (sent < count) res.write(piece(sent++));
    if (sent === count) res.end();
    else timer = setTimeout(writeNext, intervalMs);
  };
  res.on('close', () => clearTimeout(timer));
  writeNext();
}

// Deterministic body bytes: byte k of a body is k mod 251. A prime period never
// lines up with power-of-two piece sizes, so a reordered or repeated piece shows.
const PATTERN_PERIOD = 251;
const PATTERN = Buffer.from(Array.from({ length: PIECE_SIZE + PATTERN_PERIOD }, (_, k) => k % PATTERN_PERIOD));

/** Bytes `offset .. offset+length` of the deterministic data that `/bytes` and `/chunked` send. Do not modify the result. */
export function deterministicBytes(offset: number, length: number): Buffer {
  const start = offset % PATTERN_PERIOD;
  if (length <= PIECE_SIZE) return PATTERN.subarray(start, start + length);
  const out = Buffer.allocUnsafe(length);
  for (let done = 0; done < length; done += PIECE_SIZE) {
    deterministicBytes(offset + done, Math.min(PIECE_SIZE, length - done)).copy(out, done);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Route handlers

function hello({ res, state }: Exchange): void {
  sendText(res, 200, `Hello from ${state.name}\n`);
}

function whoami({ req, res, state }: Exchange): void {
  sendJson(res, 200, {
    name: state.name,
    pid: process.pid,
    port: state.port,
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    headers: headerPairs(req.rawHeaders),
    remoteAddress: req.socket.remoteAddress,
  });
}

/** Hashes the body as it streams in: memory stays flat even for a 1 GB upload. */
async function echo({ req, res, state }: Exchange): Promise<void> {
  const hash = createHash('sha256');
  let byteCount = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    byteCount += chunk.length;
    hash.update(chunk);
  }
  sendJson(res, 200, {
    name: state.name,
    method: req.method,
    url: req.url,
    bytes: byteCount,
    sha256: hash.digest('hex'),
    headers: headerPairs(req.rawHeaders),
  });
}

/** Server-sent events without Content-Length: shows that the proxy streams instead of buffering. */
function serverSentEvents({ res, url, state }: Exchange): void {
  const count = intParam(url, 'n', 5, 0, 100_000);
  const intervalMs = intParam(url, 'interval', 200, 0, 600_000);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  writePeriodically(res, count, intervalMs, (i) => `data: ${i} from ${state.name}\n\n`);
}

function chunked({ res, url }: Exchange): void {
  const count = intParam(url, 'n', 5, 0, 100_000);
  const size = intParam(url, 'size', 10, 1, PIECE_SIZE);
  const intervalMs = intParam(url, 'interval', 50, 0, 600_000);
  // No Content-Length: Node frames the body with Transfer-Encoding: chunked, one chunk per write.
  res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
  res.flushHeaders();
  writePeriodically(res, count, intervalMs, (i) => deterministicBytes(i * size, size));
}

function slow({ res, url, state }: Exchange): void {
  const delayMs = intParam(url, 'ms', 2000, 0, 3_600_000);
  const timer = setTimeout(() => sendText(res, 200, `slow ${delayMs} ms from ${state.name}\n`), delayMs);
  res.on('close', () => clearTimeout(timer));
}

function status({ res, path, state }: Exchange): void {
  const statusCode = Number(STATUS_PATH.exec(path)![1]);
  if (statusCode < 200 || statusCode > 599) throw new BadRequest('status must be from 200 to 599');
  // 204 and 304 must not carry a body (Node's client rejects a 204 with one).
  if (statusCode === 204 || statusCode === 304) res.writeHead(statusCode).end();
  else sendText(res, statusCode, `status ${statusCode} from ${state.name}\n`);
}

/** `n` deterministic bytes with Content-Length, written in 64 KiB pieces with backpressure. */
async function bytes({ res, url }: Exchange): Promise<void> {
  const total = intParam(url, 'n', 1024 * 1024, 0, Number.MAX_SAFE_INTEGER);
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
  for (let offset = 0; offset < total && !res.destroyed; offset += PIECE_SIZE) {
    const piece = deterministicBytes(offset, Math.min(PIECE_SIZE, total - offset));
    if (!res.write(piece)) await drainedOrClosed(res);
  }
  if (!res.destroyed) res.end();
}

function count({ res, state }: Exchange): void {
  let total = 0;
  for (const n of state.requestCounts.values()) total += n;
  sendJson(res, 200, { name: state.name, pid: process.pid, total, paths: Object.fromEntries(state.requestCounts) });
}

function countReset({ res, state }: Exchange): void {
  state.requestCounts.clear();
  sendJson(res, 200, { name: state.name, reset: true });
}

function healthz({ res, state }: Exchange): void {
  if (state.healthy) sendText(res, 200, 'ok\n');
  else sendText(res, 503, 'unhealthy\n');
}

function healthzToggle({ res, state }: Exchange): void {
  state.healthy = !state.healthy;
  sendJson(res, 200, { name: state.name, healthy: state.healthy });
}

function notFound({ res, url, state }: Exchange): void {
  sendJson(res, 404, { error: 'not found', name: state.name, path: url.pathname });
}

// ---------------------------------------------------------------------------
// WebSocket echo (RFC 6455), just enough for a proxy test: unfragmented or
// fragmented data frames are echoed frame by frame, ping gets pong, close gets close.

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Larger frames are refused (close 1009): an echo server has no use for them. */
const MAX_WEBSOCKET_PAYLOAD = 16 * 1024 * 1024;

export const WebSocketOpcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

const CloseCode = { protocolError: 1002, tooBig: 1009 } as const;

export interface WebSocketFrame {
  fin: boolean;
  /** The three extension bits; must be 0 since no extension is negotiated. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Buffer;
  /** Bytes the whole frame took in the input. */
  frameLength: number;
}

class WebSocketProtocolError extends Error {
  constructor(readonly closeCode: number, message: string) {
    super(message);
  }
}

/** `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/** Decodes the frame at the start of `buf`, or returns undefined when more bytes are needed. */
export function decodeWebSocketFrame(buf: Buffer, maxPayload = MAX_WEBSOCKET_PAYLOAD): WebSocketFrame | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1]! & 0x80) !== 0;
  let payloadLength = buf[1]! & 0x7f;
  let offset = 2;
  if (payloadLength === 126) {
    if (buf.length < 4) return undefined;
    payloadLength = buf.readUInt16BE(2);
    offset = 4;
  } else if (payloadLength === 127) {
    if (buf.length < 10) return undefined;
    const length64 = buf.readBigUInt64BE(2);
    if (length64 > BigInt(maxPayload)) throw new WebSocketProtocolError(CloseCode.tooBig, 'frame too large');
    payloadLength = Number(length64);
    offset = 10;
  }
  if (payloadLength > maxPayload) throw new WebSocketProtocolError(CloseCode.tooBig, 'frame too large');
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buf.length < offset + payloadLength) return undefined;
  const payload = Buffer.from(buf.subarray(offset, offset + payloadLength));
  if (masked) {
    for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[maskOffset + (i % 4)]!;
  }
  return {
    fin: (buf[0]! & 0x80) !== 0,
    rsv: (buf[0]! & 0x70) >> 4,
    opcode: buf[0]! & 0x0f,
    masked,
    payload,
    frameLength: offset + payloadLength,
  };
}

/** Encodes an unmasked (server-to-client) frame. */
export function encodeWebSocketFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([first, payload.length]);
  } else if (payload.length < 0x10000) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([header, payload]);
}

function handleUpgrade(state: BackendState, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  // A client vanishing mid-frame must not crash the backend.
  socket.on('error', () => socket.destroy());
  const url = parseTarget(req.url);
  if (url) countRequest(state, url.pathname);
  const key = req.headers['sec-websocket-key'];
  if (!url || withoutApiPrefix(url.pathname) !== '/ws') {
    refuseUpgrade(socket, state, '404 Not Found');
  } else if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string' ||
    req.headers['sec-websocket-version'] !== '13') {
    refuseUpgrade(socket, state, '400 Bad Request');
  } else {
    acceptUpgrade(socket, state, key, head);
  }
}

function refuseUpgrade(socket: Duplex, state: BackendState, statusLine: string): void {
  socket.end(`HTTP/1.1 ${statusLine}\r\nX-Backend: ${state.name}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

function acceptUpgrade(socket: Duplex, state: BackendState, key: string, head: Buffer): void {
  socket.write([
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${websocketAccept(key)}`,
    `X-Backend: ${state.name}`,
    '',
    '',
  ].join('\r\n'));
  state.upgradedSockets.add(socket);
  socket.on('close', () => state.upgradedSockets.delete(socket));
  new WebSocketEcho(socket, head);
}

class WebSocketEcho {
  private pending: Buffer = Buffer.alloc(0);
  private closed = false;

  constructor(private readonly socket: Duplex, head: Buffer) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    if (head.length > 0) this.receive(head);
  }

  private receive(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      for (let frame = decodeWebSocketFrame(this.pending); frame && !this.closed; frame = decodeWebSocketFrame(this.pending)) {
        this.pending = this.pending.subarray(frame.frameLength);
        this.answer(frame);
      }
    } catch (err) {
      if (!(err instanceof WebSocketProtocolError)) throw err;
      this.close(closePayload(err.closeCode));
    }
  }

  private answer(frame: WebSocketFrame): void {
    // Clients must mask (RFC 6455 5.1) and may not set RSV bits without an extension.
    if (!frame.masked || frame.rsv !== 0) {
      this.close(closePayload(CloseCode.protocolError));
      return;
    }
    switch (frame.opcode) {
      case WebSocketOpcode.continuation:
      case WebSocketOpcode.text:
      case WebSocketOpcode.binary:
        // Echoing frame by frame keeps the client's fragmentation intact.
        this.socket.write(encodeWebSocketFrame(frame.opcode, frame.payload, frame.fin));
        break;
      case WebSocketOpcode.ping:
        this.socket.write(encodeWebSocketFrame(WebSocketOpcode.pong, frame.payload));
        break;
      case WebSocketOpcode.pong:
        break;
      case WebSocketOpcode.close:
        this.close(frame.payload);
        break;
      default:
        this.close(closePayload(CloseCode.protocolError));
    }
  }

  /** Sends a close frame (echoing the client's status, if any) and ends the connection. */
  private close(payload: Buffer): void {
    this.closed = true;
    this.socket.end(encodeWebSocketFrame(WebSocketOpcode.close, payload));
  }
}

function closePayload(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return payload;
}

// ---------------------------------------------------------------------------
// Running as a process

function parseCommandLine(argv: string[]): BackendOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: DEFAULT_HOST },
      name: { type: 'string', default: 'backend' },
      'keep-alive-timeout': { type: 'string' },
    },
  });
  const keepAlive = values['keep-alive-timeout'];
  return {
    port: parseIntegerOption('--port', values.port, 65535),
    host: values.host,
    name: values.name,
    keepAliveTimeoutMs: keepAlive === undefined ? undefined : parseIntegerOption('--keep-alive-timeout', keepAlive, 2 ** 31 - 1),
  };
}

function parseIntegerOption(option: string, text: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${option} must be an integer from 0 to ${max}`);
  return value;
}

async function runAsProcess(argv: string[]): Promise<void> {
  let opts: BackendOptions;
  try {
    opts = parseCommandLine(argv);
  } catch (err) {
    process.stderr.write(`backend: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let backend: RunningBackend;
  try {
    backend = await startBackend(opts);
  } catch (err) {
    process.stderr.write(`backend ${opts.name}: cannot listen on port ${opts.port}: ${(err as Error).message}\n`);
    process.exit((err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? EXIT_ADDRESS_IN_USE : 1);
  }
  process.stdout.write(JSON.stringify({ event: 'listening', name: backend.name, port: backend.port, pid: process.pid }) + '\n');

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    backend.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Spawned with an IPC channel (as replicas.ts does): the channel closes when the parent dies, even by SIGKILL.
  if (process.send) process.on('disconnect', stop);
}

/** True when this module is the script node was started with (ESM has no `require.main`). */
function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

if (isMainModule(import.meta.url)) await runAsProcess(process.argv.slice(2));
