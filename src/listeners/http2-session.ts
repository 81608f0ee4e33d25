/**
 * HTTP/2 from clients on TLS listeners (ALPN "h2"), proxied to HTTP/1.1
 * upstreams. node:http2 does the framing (and resets streams that carry
 * connection-specific headers, RFC 9113 8.2.2); each stream becomes an
 * Exchange through the Downstream interface, exactly like an HTTP/1.1
 * request. `:authority` becomes the Host (RFC 9113 8.3.1).
 *
 * Reload sends GOAWAY, so clients open a new connection for new streams while
 * streams in flight finish.
 */
import type * as http2 from 'node:http2';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RequestHead } from '../http/request-head.js';
import { BodyWrite, HeaderList, type Downstream } from '../proxy/downstream.js';
import { Exchange, type ExchangeHost } from '../proxy/exchange.js';
import { hostWithoutPort } from '../router/server-names.js';
import type { TrackedConnection } from './connection-tracker.js';
import { ConnectionPhase, connectionCounts, movePhase } from './connection-counts.js';
import type { ListenerContext } from './http1-connection.js';

/** Headers that are never valid in HTTP/2 (RFC 9113 8.2.2); fulcrum strips them from responses. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);
const PSEUDO_METHOD = ':method';
const PSEUDO_PATH = ':path';
const PSEUDO_AUTHORITY = ':authority';

/**
 * node:http2 is loaded with the first h2 connection: a process that never
 * sees one (plain HTTP, or TLS without http2) saves the ~2 MiB of RSS the
 * module costs.
 */
let http2Module: typeof http2 | undefined;

function loadHttp2(): typeof http2 {
  return (http2Module ??= createRequire(import.meta.url)('node:http2') as typeof http2);
}

/** One shared http2 server object does the protocol work for every h2 connection of the process. */
let protocolServer: http2.Http2Server | undefined;

function h2Server(): http2.Http2Server {
  if (protocolServer === undefined) {
    protocolServer = loadHttp2().createServer({ maxSessionMemory: 10, settings: { maxConcurrentStreams: 128 } });
    // node:http2 creates the session synchronously inside emit('connection'),
    // so the connection being handed over is known here.
    protocolServer.on('session', (session: http2.ServerHttp2Session) => {
      const owner = handingOver;
      if (owner === undefined) return session.destroy();
      owner.attach(session);
    });
  }
  return protocolServer;
}

let handingOver: Http2Connection | undefined;
/** maxConcurrentStreams the shared server currently announces (http2_max_concurrent_streams, nginx's default 128). */
let announcedStreams = 128;

let nextId = 1_000_000_000;

/** An HTTP/2 client connection: tracks its streams for timeouts and draining. */
export class Http2Connection implements TrackedConnection {
  readonly connectionId = nextId++;
  private session: http2.ServerHttp2Session | undefined;
  readonly streams = new Set<Http2StreamDownstream>();
  requestCount = 0;
  private draining = false;
  /** The session closed (stub_status counts). */
  private gone = false;
  readonly remoteAddr: string;
  /** When a stream last opened or closed (or a sweep saw one open). */
  lastActive = performance.now();

  constructor(
    readonly socket: Socket,
    readonly listener: ListenerContext,
  ) {
    this.remoteAddr = socket.remoteAddress ?? '';
    listener.tracker.add(this);
    // For stub_status: the connection waits while it has no stream; each stream is a request writing.
    connectionCounts.handled++;
    connectionCounts.active++;
    connectionCounts.phases[ConnectionPhase.Waiting]!++;
    handingOver = this;
    // The session's first SETTINGS come from the shared server's: set them for this listener's default server (as nginx takes them).
    const streams = listener.spec.servers.defaultServer.http2MaxConcurrentStreams;
    const server = h2Server();
    if (streams !== announcedStreams) {
      server.updateSettings({ maxConcurrentStreams: streams });
      announcedStreams = streams;
    }
    try {
      server.emit('connection', socket);
    } finally {
      handingOver = undefined;
    }
  }

  attach(session: http2.ServerHttp2Session): void {
    this.session = session;
    session.on('stream', (stream, headers) => this.onStream(stream, headers));
    session.on('close', () => this.closed());
    session.on('error', () => undefined);
    if (this.draining) session.goaway();
  }

  private closed(): void {
    this.listener.tracker.remove(this);
    if (this.gone) return;
    this.gone = true;
    connectionCounts.active--;
    if (this.streams.size === 0) connectionCounts.phases[ConnectionPhase.Waiting]!--;
  }

  /** A stream is over (closed, or its exchange finished). */
  streamEnded(down: Http2StreamDownstream): void {
    if (!this.streams.delete(down)) return;
    connectionCounts.phases[ConnectionPhase.Writing]!--;
    if (this.streams.size === 0 && !this.gone) connectionCounts.phases[ConnectionPhase.Waiting]!++;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    this.requestCount++;
    connectionCounts.requests++;
    if (this.streams.size === 0 && !this.gone) movePhase(ConnectionPhase.Waiting, ConnectionPhase.Writing);
    else connectionCounts.phases[ConnectionPhase.Writing]!++;
    this.lastActive = performance.now();
    const down = new Http2StreamDownstream(this, stream);
    const head = requestHeadFromH2(headers);
    const ex = new Exchange(down, down, head, performance.now(), 0);
    down.exchange = ex;
    this.streams.add(down);
    if (head.error !== '') {
      ex.server = this.listener.spec.servers.defaultServer;
      return ex.reject(400);
    }
    const server = this.listener.spec.servers.find(head.host === undefined ? '' : hostWithoutPort(head.host));
    stream.on('data', (chunk: Buffer) => down.onData(chunk));
    stream.on('end', () => down.onEnd());
    stream.on('close', () => down.onClose());
    stream.on('error', () => undefined);
    stream.on('drain', () => down.exchange?.downstreamDrain());
    ex.start(server);
    if (!head.hasBody && !stream.readableEnded) {
      // No declared body: still read until END_STREAM so flow control is not stuck.
      stream.resume();
    }
  }

  checkTimeouts(now: number): void {
    if (this.streams.size !== 0) {
      this.lastActive = now;
      for (const s of this.streams) s.exchange?.checkTimeouts(now);
      return;
    }
    // No stream open: an idle connection, closed after keepalive_timeout like an HTTP/1.1 one.
    if (now - this.lastActive > this.listener.spec.servers.defaultServer.settings.keepaliveTimeoutMs) {
      this.session?.goaway();
      this.session?.close();
      this.socket.destroy();
    }
  }

  drain(): void {
    this.draining = true;
    this.session?.goaway();
  }

  closeIfIdle(): boolean {
    this.drain();
    if (this.streams.size === 0) {
      this.session?.close();
      this.socket.destroy();
      return true;
    }
    return false;
  }

  abort(_reason: string): void {
    this.session?.destroy();
    this.socket.destroy();
  }
}

/** Builds a RequestHead from HTTP/2 pseudo-headers and fields; `error` is set if the request is malformed. */
export function requestHeadFromH2(headers: http2.IncomingHttpHeaders): RequestHead {
  const head = new RequestHead();
  head.method = String(headers[PSEUDO_METHOD] ?? '');
  const path = String(headers[PSEUDO_PATH] ?? '');
  head.target = path;
  head.path = path;
  head.versionMinor = 1;
  const authority = headers[PSEUDO_AUTHORITY] ?? headers.host;
  head.host = authority === undefined ? undefined : String(authority).toLowerCase();
  const fields: Array<[string, string]> = [];
  // :authority is the host (RFC 9113 8.3.1), passed on as the Host field.
  if (head.host !== undefined) fields.push(['host', head.host]);
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    if (name === 'host') continue;
    for (const v of Array.isArray(value) ? value : [value]) fields.push([name, v]);
    if (name === 'content-length') head.contentLength = /^[0-9]{1,15}$/.test(String(value)) ? Number(value) : -2;
  }
  head.setFields(fields);
  // The same target rules as HTTP/1.1: visible ASCII, no backslash, no fragment.
  const badPath = !path.startsWith('/') || /[^\x21-\x5b\x5d-\x7e]|#/.test(path);
  if (head.method === '' || badPath || head.method === 'CONNECT' || head.contentLength === -2) head.error = 'malformed HTTP/2 request';
  // HTTP/2 always frames the body itself; whether there is one is known only
  // from END_STREAM, so treat every request that may have a body as chunked.
  if (head.contentLength < 0 && head.method !== 'GET' && head.method !== 'HEAD') head.chunked = true;
  return head;
}

export class Http2StreamDownstream implements Downstream, ExchangeHost {
  exchange: Exchange | undefined;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly scheme = 'https' as const;
  readonly tlsSocket: TLSSocket;
  readonly connectionId: number;
  readonly requestCount: number;
  readonly canChunk = true;
  readonly protocol = 'HTTP/2.0';
  private readonly headers = new HeaderList();

  constructor(
    private readonly connection: Http2Connection,
    private readonly stream: http2.ServerHttp2Stream,
  ) {
    const socket = connection.socket;
    this.remoteAddr = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.localAddr = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    // HTTP/2 is offered on TLS listeners only.
    this.tlsSocket = socket as TLSSocket;
    this.connectionId = connection.connectionId;
    this.requestCount = connection.requestCount;
  }

  get draining(): boolean {
    return false;
  }

  onData(chunk: Buffer): void {
    this.exchange?.requestData(chunk, false);
  }

  onEnd(): void {
    this.exchange?.requestEnd();
  }

  onClose(): void {
    this.connection.streamEnded(this);
    this.connection.lastActive = performance.now();
    const ex = this.exchange;
    this.exchange = undefined;
    ex?.clientAborted();
  }

  exchangeDone(ex: Exchange): void {
    if (ex === this.exchange) this.connection.streamEnded(this);
  }

  responseHeaders(): HeaderList {
    return this.headers.reset();
  }

  sendHead(status: number, _reason: string, headers: HeaderList, length: number, noBody: boolean, body: Buffer | null, end: boolean): boolean {
    const stream = this.stream;
    if (stream.destroyed || stream.headersSent) return true;
    const out: http2.OutgoingHttpHeaders = { ':status': status };
    headers.forEach((fieldName, value) => {
      const name = fieldName.toLowerCase();
      if (CONNECTION_SPECIFIC.has(name)) return;
      const existing = out[name];
      out[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [String(existing), value];
    });
    if (length >= 0 && status !== 204 && status !== 304 && status >= 200) out['content-length'] = length;
    const finished = noBody || (end && (body === null || body.length === 0));
    try {
      stream.respond(out, { endStream: finished });
    } catch {
      stream.close(loadHttp2().constants.NGHTTP2_INTERNAL_ERROR);
      return true;
    }
    if (finished) return true;
    if (body !== null && body.length > 0) {
      const owned = Buffer.from(body); // borrowed from a read buffer
      if (end) {
        stream.end(owned);
        return true;
      }
      return stream.write(owned);
    }
    if (end) stream.end();
    return true;
  }

  sendBody(chunk: Buffer): boolean {
    if (this.stream.destroyed) return true;
    return this.stream.write(Buffer.from(chunk)); // borrowed from a read buffer
  }

  keepReadBuffer(): void {
    // Request bodies come from nghttp2 as buffers of their own: nothing to do.
  }

  readBuffersWrittenOut(): void {}

  lendBody(chunk: Buffer): number {
    // HTTP/2 frames are queued in nghttp2, not written at once: a copy is what keeps the lender's buffer free.
    return this.sendBody(chunk) ? 0 : BodyWrite.Blocked;
  }

  endBody(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  abort(_reason: string): void {
    if (!this.stream.destroyed) this.stream.close(loadHttp2().constants.NGHTTP2_INTERNAL_ERROR);
  }

  pauseRequestBody(): void {
    this.stream.pause();
  }

  resumeRequestBody(): void {
    this.stream.resume();
  }

  sendContinue(): void {
    // HTTP/2 clients that send `expect: 100-continue` get the final response; node answers 100 itself when asked.
  }

  connectionsFromClient(): number {
    return this.connection.listener.tracker.connectionsFrom(this.remoteAddr);
  }

  takeOverSocket(): undefined {
    return undefined;
  }

  waitForDrain(): Promise<void> {
    if (!this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      this.stream.once('drain', resolve);
      this.stream.once('close', resolve);
    });
  }
}
