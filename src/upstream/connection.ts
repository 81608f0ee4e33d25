/**
 * One HTTP/1.1 connection to an upstream server: reads and frames responses,
 * strictly (src/http/response-head.ts, chunked.ts), and reports them to its
 * current user (the proxy's Exchange) through the UpstreamUser interface.
 * Listeners are attached once per connection; per request there are no
 * closures, only a user pointer swap.
 *
 * Plain HTTP to an IP address runs on a bare TCP handle (net/tcp-stream.ts):
 * opening and closing a net.Socket costs ~200 µs of JavaScript that V8 seldom
 * optimizes, and nginx's `keepalive_requests 1000` replaces connections tens
 * of times a second under load.
 *
 * Framing errors, truncation and any byte the upstream sends while it should
 * be silent make the connection unusable: it is never returned to the pool
 * (RFC 9112 6.3).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ChunkedDecoder } from '../http/chunked.js';
import { ResponseHead, parseResponseHead } from '../http/response-head.js';
import { READ_BUFFER_SIZE, ReadBufferChoice } from '../net/read-buffers.js';
import { hookOwnReads } from '../net/shared-read-buffer.js';
import { TcpStream, tcpStreamsAvailable, type TcpStreamOwner } from '../net/tcp-stream.js';
import { turnNow } from '../net/turn-clock.js';
import { DOUBLE_ZERO } from '../runtime/double-zero.js';
import type { ServerState } from './server-state.js';
import { verifyUpstream, type UpstreamTls } from './tls-settings.js';

export const enum UpstreamFailure {
  /** TCP connect failed or was refused. */
  Connect = 1,
  /** Connection reset or closed before the response head was complete. */
  Reset = 2,
  /** The response head or framing was invalid. */
  Invalid = 3,
  /** The response body ended early (connection lost mid-body). */
  Truncated = 4,
}

/**
 * Body bytes handed to the user (`body`, `data`) are borrowed: they live in a
 * read buffer that the next read overwrites, so a user that keeps them past
 * the call (queues them for a write) must copy them, except `data` that
 * comes `lendable`: see UpstreamConnection.keepReadBuffer().
 */
export interface UpstreamUser {
  upstreamConnected(conn: UpstreamConnection): void;
  /**
   * The final response head arrived. `body` holds body bytes that came with
   * it (already de-chunked), `complete` says the whole response is in hand.
   */
  upstreamHead(conn: UpstreamConnection, head: ResponseHead, body: Buffer | null, complete: boolean): void;
  /**
   * `lendable`: the bytes are in this connection's own read buffer (a
   * streamed body): they may be written without a copy, as long as the user
   * calls conn.keepReadBuffer() when a write still holds them after the call.
   */
  upstreamData(conn: UpstreamConnection, data: Buffer, lendable: boolean): void;
  upstreamEnd(conn: UpstreamConnection): void;
  upstreamError(conn: UpstreamConnection, failure: UpstreamFailure, message: string): void;
  upstreamDrain(conn: UpstreamConnection): void;
}

const enum Phase {
  Connecting,
  Head,
  Length,
  Chunked,
  UntilClose,
  Tunnel,
  Complete,
  Idle,
  Closed,
}

const MAX_RESPONSE_HEAD = 65536;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

let nextConnectionId = 1;

/**
 * What an upstream connection runs on: a bare TCP handle (net/tcp-stream.ts)
 * for plain HTTP to an IP address, the usual case and the one on the hot
 * path; net.Socket or tls.TLSSocket for TLS upstreams, tunnels and host
 * names.
 */
export type UpstreamSocket = net.Socket | TcpStream;

/**
 * Reads land in one buffer shared by every upstream connection of the
 * process: a response head and a small body are parsed, copied into the
 * client's write and forgotten within the read callback. A streamed body is
 * read into a buffer of the connection's own instead (net/read-buffers.ts),
 * so that its chunks go to the client without a copy.
 */
const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);

export class UpstreamConnection implements TcpStreamOwner {
  readonly id = nextConnectionId++;
  readonly socket: UpstreamSocket;
  readonly server: ServerState;
  user: UpstreamUser | null = null;
  readonly head = new ResponseHead();
  /** Requests sent on this connection (1 while serving the first). */
  requests = 0;
  readonly createdAt: number;
  idleSince = DOUBLE_ZERO;
  /** Last time bytes arrived from the upstream (for proxy_read_timeout). */
  lastRead = DOUBLE_ZERO;
  /** Whether any byte of the current response has arrived. */
  responseStarted = false;
  /** The current request was HEAD: the response has no body whatever its headers say. */
  expectNoBody = false;
  /** The upstream said or did something that forbids reuse. */
  reusable = true;
  private phase = Phase.Connecting;
  private pending: Buffer | null = null;
  private remaining = 0;
  private readonly chunked = new ChunkedDecoder();
  /** Where the next read lands: the shared buffer, or the connection's own while streaming a body. */
  private readonly reads = new ReadBufferChoice(sharedReadBuffer);
  /** proxy_ssl_verify with session reuse: a session given before the certificate was checked. */
  private unverifiedSession: Buffer | undefined = undefined;
  /** Reads go through `onread` (plain TCP, not a tunnel): the read buffer is ours to choose. */
  private readonly choosesReadBuffer: boolean;
  /** When the connect phase times out (performance.now() ms). */
  private readonly connectDeadline: number;

  /**
   * `tunnel`: the connection will carry an upgrade (WebSocket) and must
   * deliver bytes as owned 'data' buffers to the relay.
   */
  constructor(server: ServerState, now: number, connectTimeoutMs: number, tunnel = false) {
    this.server = server;
    this.createdAt = now;
    this.lastRead = now;
    const { host, port } = server.endpoint;
    // proxy_pass https://: the proxy_ssl_* settings (upstream/tls-settings.ts).
    const tlsSettings = server.tls;
    const nextBuffer = (): Uint8Array => this.reads.next();
    const onRead = (n: number, buf: Uint8Array): boolean => this.onRead(n, buf);
    this.connectDeadline = now + connectTimeoutMs;
    this.choosesReadBuffer = tlsSettings === undefined && !tunnel;
    const family = this.choosesReadBuffer && tcpStreamsAvailable ? net.isIP(host) : 0;
    server.connections++;
    server.openConnections.add(this);
    if (family === 4 || family === 6) {
      this.socket = TcpStream.connect(this, host, port, family, onRead, nextBuffer(), nextBuffer);
      return;
    }
    const socket = tlsSettings !== undefined
      ? this.connectTls(tlsSettings, host, port)
      : tunnel
        ? net.connect({ host, port, noDelay: true })
        : net.connect({ host, port, noDelay: true, onread: { buffer: nextBuffer, callback: onRead } });
    // Node's onread option above, then fulcrum's onread in place of Node's per-read step (shared-read-buffer.ts).
    if (this.choosesReadBuffer) hookOwnReads(socket, onRead, nextBuffer);
    this.socket = socket;
    socket.on(tlsSettings !== undefined ? 'secureConnect' : 'connect', () => this.onTcpConnect());
    // A socket connected with `onread` never emits 'data'; a listener would only put its stream in flowing mode (a nextTick and stream reads per connection).
    if (!this.choosesReadBuffer) socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.onTcpEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onTcpError(err));
    socket.on('close', () => this.onTcpClose());
    socket.on('drain', () => this.onTcpDrain());
  }

  /** The net.Socket of a TLS upstream or a tunnel (never a TcpStream: those are plain HTTP connections). */
  get netSocket(): net.Socket {
    if (this.socket instanceof TcpStream) throw new Error('upstream connection has no net.Socket');
    return this.socket;
  }

  get connecting(): boolean {
    return this.phase === Phase.Connecting;
  }

  get closed(): boolean {
    return this.phase === Phase.Closed;
  }

  get tunnelling(): boolean {
    return this.phase === Phase.Tunnel;
  }

  /** Prepares for a new request/response on this connection. */
  startRequest(user: UpstreamUser, expectNoBody: boolean, now: number): void {
    this.user = user;
    this.requests++;
    this.responseStarted = false;
    this.expectNoBody = expectNoBody;
    this.lastRead = now;
    this.pending = null;
    if (this.phase !== Phase.Connecting) this.phase = Phase.Head;
  }

  /** Switches to raw byte relay after a 101 response (WebSocket and other upgrades). */
  startTunnel(): void {
    this.phase = Phase.Tunnel;
    this.reusable = false;
    this.user = null; // the tunnel relays the socket's bytes itself
  }

  markIdle(now: number): void {
    this.user = null;
    this.phase = Phase.Idle;
    this.idleSince = now;
  }

  /**
   * The body bytes just handed on as `lendable` are still held by a write:
   * the connection's next read must land elsewhere.
   */
  keepReadBuffer(): void {
    this.reads.keep();
  }

  /** The client has nothing pending: the read buffers kept for its writes are free again. */
  readBuffersWrittenOut(): void {
    this.reads.writesDone();
  }

  /** Bytes outside the shared buffer (the own buffer, or a TLS socket's fresh one) can be written without a copy. */
  private lends(data: Buffer): boolean {
    return data.buffer !== sharedReadBuffer.buffer;
  }

  /** A streamed body begins: its reads land in a buffer of this connection's own. */
  private useOwnReadBuffer(): void {
    if (this.choosesReadBuffer) this.reads.useOwn();
  }

  /**
   * Back to the shared buffer. Called only when no further read can land in
   * the own buffer: from a read callback (Node asks for the next buffer
   * after it returns) or once the socket is closed.
   */
  private useSharedReadBuffer(): void {
    this.reads.useShared(true);
  }

  destroy(): void {
    this.reusable = false;
    if (this.phase !== Phase.Closed) this.socket.destroy();
  }

  private connectTls(settings: UpstreamTls, host: string, port: number): tls.TLSSocket {
    const server = this.server;
    const session = settings.sessionReuse ? server.tlsSession : undefined;
    const socket = tls.connect({ ...settings.connectOptions, host, port, session });
    if (settings.sessionReuse) {
      socket.on('session', (s: Buffer) => {
        // Only sessions made with the settings of this generation (a reload may
        // change them), and, with verification, only once the certificate
        // passed: a resumed session is not verified again (TLS 1.2 gives the
        // session before the handshake completes).
        if (server.tls !== settings) return;
        if (settings.verify && this.phase === Phase.Connecting) this.unverifiedSession = s;
        else server.tlsSession = s;
      });
    }
    return socket;
  }

  onTcpConnect(): void {
    const settings = this.server.tls;
    if (settings !== undefined && settings.verify) {
      const problem = verifyUpstream(this.netSocket as tls.TLSSocket, settings);
      if (problem !== undefined) {
        // A session of a server that failed verification must not skip the check next time.
        this.server.tlsSession = undefined;
        this.unverifiedSession = undefined;
        return this.fail(UpstreamFailure.Connect, problem);
      }
      if (this.unverifiedSession !== undefined) {
        this.server.tlsSession = this.unverifiedSession;
        this.unverifiedSession = undefined;
      }
    }
    if (this.phase === Phase.Connecting) this.phase = Phase.Head;
    this.user?.upstreamConnected(this);
  }

  /**
   * proxy_connect_timeout (the TCP connect and, for https upstreams, the TLS
   * handshake), checked by the proxy's sweep like the read and send timeouts:
   * a socket timeout would put a timer in Node's lists and take it out again
   * for every connection, Node code that then runs a few times a second and
   * keeps V8 compiling it under load (docs/benchmarks.md).
   */
  checkConnectTimeout(now: number): void {
    if (this.phase === Phase.Connecting && now > this.connectDeadline) this.fail(UpstreamFailure.Connect, 'connect timed out');
  }

  /**
   * Reads into one buffer shared by every upstream connection of the process
   * (no allocation per read, no stream machinery): what this hands on is
   * borrowed, valid only during the call; whatever is kept is copied.
   */
  private onRead(n: number, buf: Uint8Array): boolean {
    this.onData((buf as Buffer).subarray(0, n));
    return true;
  }

  private onData(data: Buffer): void {
    this.lastRead = turnNow();
    switch (this.phase) {
      case Phase.Head:
        this.responseStarted = true;
        this.readHead(data);
        return;
      case Phase.Length:
        this.readLength(data, 0);
        return;
      case Phase.Chunked:
        this.readChunked(data, 0);
        return;
      case Phase.UntilClose:
      case Phase.Tunnel:
        this.user?.upstreamData(this, data, this.lends(data));
        return;
      default:
        // Bytes while idle or after a complete response: the upstream is not
        // speaking HTTP as we understood it. Never reuse this connection.
        this.reusable = false;
        if (this.phase === Phase.Idle) this.destroy();
    }
  }

  private readHead(data: Buffer): void {
    let buf = data;
    let searchFrom = 0;
    if (this.pending !== null) {
      searchFrom = Math.max(0, this.pending.length - 3);
      buf = Buffer.concat([this.pending, data]);
      this.pending = null;
    }
    for (;;) {
      const i = buf.indexOf(CRLFCRLF, searchFrom);
      if (i < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) return this.fail(UpstreamFailure.Invalid, 'upstream response head too large');
        // Keep a copy: `buf` may be the shared read buffer.
        this.pending = buf.buffer === sharedReadBuffer.buffer ? Buffer.from(buf) : buf;
        return;
      }
      const head = this.head;
      head.reset();
      if (!parseResponseHead(buf.toString('latin1', 0, i), head)) return this.fail(UpstreamFailure.Invalid, head.error);
      const bodyStart = i + 4;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        // Interim responses (100 Continue, 103 Early Hints) are not relayed, like nginx.
        buf = buf.subarray(bodyStart);
        searchFrom = 0;
        if (buf.length === 0) return;
        continue;
      }
      this.dispatchHead(buf, bodyStart);
      return;
    }
  }

  private dispatchHead(buf: Buffer, bodyStart: number): void {
    const head = this.head;
    const user = this.user!;
    if (!head.keepAlive) this.reusable = false;
    if (head.status === 101) {
      this.phase = Phase.Tunnel;
      this.reusable = false;
      user.upstreamHead(this, head, bodyStart < buf.length ? buf.subarray(bodyStart) : null, false);
      return;
    }
    if (this.expectNoBody || head.status === 204 || head.status === 304) {
      if (bodyStart < buf.length) {
        if (head.status === 204) return this.fail(UpstreamFailure.Invalid, 'upstream sent a body with 204');
        this.reusable = false;
      }
      this.phase = Phase.Complete;
      user.upstreamHead(this, head, null, true);
      return;
    }
    if (head.chunked) {
      this.phase = Phase.Chunked;
      this.useOwnReadBuffer();
      this.chunked.reset();
      user.upstreamHead(this, head, null, false);
      if (this.phase === Phase.Chunked && bodyStart < buf.length) this.readChunked(buf, bodyStart);
      return;
    }
    if (head.contentLength >= 0) {
      const available = buf.length - bodyStart;
      if (available >= head.contentLength) {
        if (available > head.contentLength) this.reusable = false;
        this.phase = Phase.Complete;
        user.upstreamHead(this, head, head.contentLength > 0 ? buf.subarray(bodyStart, bodyStart + head.contentLength) : null, true);
        return;
      }
      this.phase = Phase.Length;
      this.useOwnReadBuffer();
      this.remaining = head.contentLength - available;
      user.upstreamHead(this, head, available > 0 ? buf.subarray(bodyStart) : null, false);
      return;
    }
    // No framing: the body runs until the upstream closes (RFC 9112 6.3 rule 8).
    this.phase = Phase.UntilClose;
    this.useOwnReadBuffer();
    this.reusable = false;
    user.upstreamHead(this, head, bodyStart < buf.length ? buf.subarray(bodyStart) : null, false);
  }

  private readLength(data: Buffer, start: number): void {
    const available = data.length - start;
    const user = this.user!;
    if (available < this.remaining) {
      this.remaining -= available;
      user.upstreamData(this, start === 0 ? data : data.subarray(start), this.lends(data));
      return;
    }
    if (available > this.remaining) this.reusable = false;
    const end = start + this.remaining;
    this.remaining = 0;
    this.phase = Phase.Complete;
    if (end > start) user.upstreamData(this, data.subarray(start, end), this.lends(data));
    this.useSharedReadBuffer(); // called within a read callback: no read lands in the own buffer any more
    if (this.user === user) user.upstreamEnd(this);
  }

  private readChunked(data: Buffer, start: number): void {
    const decoder = this.chunked;
    const user = this.user!;
    let offset = start;
    while (offset < data.length) {
      offset = decoder.execute(data, offset);
      if (decoder.failed) return this.fail(UpstreamFailure.Invalid, `invalid chunked encoding: ${decoder.error}`);
      if (decoder.spanEnd > decoder.spanStart) {
        user.upstreamData(this, data.subarray(decoder.spanStart, decoder.spanEnd), this.lends(data));
        if (this.user !== user) return;
      }
      if (decoder.done) {
        if (offset < data.length) this.reusable = false;
        this.phase = Phase.Complete;
        this.useSharedReadBuffer(); // within a read callback, as in readLength
        user.upstreamEnd(this);
        return;
      }
    }
  }

  onTcpEnd(): void {
    switch (this.phase) {
      case Phase.UntilClose:
        this.phase = Phase.Complete;
        this.user?.upstreamEnd(this);
        break;
      case Phase.Head:
        this.fail(UpstreamFailure.Reset, this.responseStarted ? 'upstream closed the connection in the response head' : 'upstream closed the connection before responding');
        break;
      case Phase.Length:
      case Phase.Chunked:
        this.fail(UpstreamFailure.Truncated, 'upstream closed the connection in the response body');
        break;
      case Phase.Tunnel:
        this.user?.upstreamEnd(this);
        break;
    }
    this.reusable = false;
    // Half-open is never useful to us: finish closing.
    if (this.phase !== Phase.Tunnel) this.socket.destroy();
  }

  onTcpError(err: NodeJS.ErrnoException): void {
    const message = `${err.code ?? 'error'}: ${err.message}`;
    switch (this.phase) {
      case Phase.Connecting:
        this.fail(UpstreamFailure.Connect, message);
        break;
      case Phase.Head:
        this.fail(UpstreamFailure.Reset, message);
        break;
      case Phase.Length:
      case Phase.Chunked:
      case Phase.UntilClose:
      case Phase.Tunnel:
        this.fail(UpstreamFailure.Truncated, message);
        break;
      default:
        this.reusable = false;
    }
  }

  onTcpClose(): void {
    const wasPhase = this.phase;
    this.phase = Phase.Closed;
    this.useSharedReadBuffer();
    this.reusable = false;
    this.server.connections--;
    this.server.openConnections.delete(this);
    this.server.pool?.forget(this);
    // A close without 'end' or 'error' (destroy() by us) needs no report;
    // one that interrupts a response does.
    if (this.user !== null && wasPhase !== Phase.Complete && wasPhase !== Phase.Idle && wasPhase !== Phase.Closed) {
      const user = this.user;
      this.user = null;
      const failure = wasPhase === Phase.Connecting ? UpstreamFailure.Connect : wasPhase === Phase.Head ? UpstreamFailure.Reset : UpstreamFailure.Truncated;
      user.upstreamError(this, failure, 'upstream connection closed');
    }
  }

  onTcpDrain(): void {
    this.user?.upstreamDrain(this);
  }

  private fail(failure: UpstreamFailure, message: string): void {
    this.reusable = false;
    const user = this.user;
    this.user = null;
    this.phase = Phase.Closed;
    this.socket.destroy();
    user?.upstreamError(this, failure, message);
  }
}
