/**
 * The client side of HTTP/1.1 on one TCP (or TLS) connection: reads request
 * heads and bodies with fulcrum's strict codec, hands each request to an
 * Exchange, and writes responses with rebuilt framing.
 *
 * One request at a time: pipelined requests wait in the buffer (reading
 * pauses beyond a limit) until the previous response is complete. After a
 * framing error the connection is closed and nothing queued behind the bad
 * request is ever forwarded.
 *
 * Writes: a response whose whole body is known when its head is written goes
 * out in one write (head and body in one buffer), held to the end of the
 * event-loop turn with the turn's other writes (net/turn-writes.ts); bodies
 * streamed later are written as they come, chunked when the length is unknown.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ChunkedDecoder, LAST_CHUNK } from '../http/chunked.js';
import { ReadBufferChoice, WriteCopies } from '../net/read-buffers.js';
import { chooseReadBuffers, isSharedReadBuffer, readIntoSharedBuffer, sharedClientReadBuffer } from '../net/shared-read-buffer.js';
import { TcpStream, type TcpStreamOwner } from '../net/tcp-stream.js';
import { turnNow } from '../net/turn-clock.js';
import { unsentDirectBytes } from '../net/direct-write.js';
import { actAtEndOfTurn, flushTurnWrites, writeAtEndOfTurn } from '../net/turn-writes.js';
import { RequestHead, incompleteHeadIsInvalid, parseRequestHead } from '../http/request-head.js';
import { BodyWrite, HeaderList, type Downstream } from '../proxy/downstream.js';
import { Exchange, type ExchangeHost } from '../proxy/exchange.js';
import { hostWithoutPort, type ServerNameMatcher } from '../router/server-names.js';
import { DOUBLE_ZERO } from '../runtime/double-zero.js';
import type { EffectiveSettings, ListenerSpec, VirtualServer } from '../runtime/table.js';
import type { ConnectionTracker, TrackedConnection } from './connection-tracker.js';
import { ConnectionPhase, connectionCounts, movePhase } from './connection-counts.js';

const enum State {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Reading the request body of the current exchange. */
  Body,
  /** Body complete (or none); the exchange is producing the response. */
  Responding,
  /** Taken over by a tunnel (WebSocket). */
  Tunnel,
  Closed,
}

/** What a connection needs from its listener. */
export interface ListenerContext {
  /** The listener's current spec (changes on reload). */
  readonly spec: ListenerSpec;
  readonly scheme: 'http' | 'https';
  readonly tracker: ConnectionTracker;
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const LAST_CHUNK_BUF = Buffer.from(LAST_CHUNK, 'latin1');
const CRLF_BUF = Buffer.from('\r\n', 'latin1');
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Pipelined bytes kept while a response is in progress; beyond this, reading pauses. */
const MAX_PIPELINED = 65536;
/** How long a closing connection waits for the client's FIN before it is destroyed (nginx lingering_timeout). */
const LINGER_MS = 5000;
/** A response smaller than this is copied into one buffer with its head: one write, one syscall. */
const SINGLE_WRITE_LIMIT = 16384;
/** ...and one smaller than this is sent with its head as one string. */
const TEXT_WRITE_LIMIT = 1024;
/**
 * At a shutdown, a connection that has not sent its first request yet is
 * kept open this long after its accept: its request may be on the way, or the
 * connection still on its way from a sibling worker (connection-spread.ts).
 * nginx closes only keep-alive connections at a graceful stop and serves the
 * first request of the others; the bound keeps a client that connects and
 * says nothing from holding the stop up.
 */
const FIRST_REQUEST_GRACE_MS = 500;

let nextConnectionId = 1;

/**
 * The client's connection: a bare TCP handle for plain HTTP where this Node
 * allows it (listener.ts), else a net.Socket (TLS, or the fallback). An
 * upgraded (tunnelled) connection is always a net.Socket.
 */
export type ClientSocket = Socket | TcpStream;

/** Bytes of a direct write the kernel has not taken yet (a TcpStream counts them in writableLength). */
function unsentBytes(socket: ClientSocket): number {
  return socket instanceof TcpStream ? 0 : unsentDirectBytes(socket);
}

export class Http1Connection implements Downstream, ExchangeHost, TrackedConnection, TcpStreamOwner {
  readonly connectionId = nextConnectionId++;
  /** Read at accept: logs need it even after the client is gone. */
  readonly remoteAddr: string;
  /** Read at accept too: Node's getter makes a call per read, and every request asks. */
  readonly remotePort: number;
  readonly scheme: 'http' | 'https';
  readonly tlsSocket: TLSSocket | undefined;
  requestCount = 0;
  canChunk = true;
  protocol = 'HTTP/1.1';

  private state = State.Head;
  private buffer: Buffer | null = null;
  /** Where the CRLFCRLF search resumes in `buffer`. */
  private searchFrom = 0;
  private readonly head = new RequestHead();
  private readonly headers = new HeaderList();
  private exchange: Exchange | null = null;
  private bodyRemaining = 0;
  private readonly chunkedBody = new ChunkedDecoder();
  private bodyChunked = false;
  /** The response being written is chunk-encoded by us. */
  private chunkedResponse = false;
  /** Decided when the response head is written. */
  private keepAliveAfterResponse = false;
  private processing = false;
  /** The client half-closed: answer what was read, then close. */
  private peerEnded = false;
  /** Set by a reload or shutdown: the next response carries Connection: close. */
  private drainRequested = false;
  private paused = false;
  private drainWaiters: (() => void)[] = [];
  private settings: EffectiveSettings;

  // ---- timing (performance.now() ms), checked by the tracker's sweep
  /** When the current head started (first byte), or when the connection became idle. */
  private headStart: number;
  private idle = false;
  /** For stub_status (connection-counts.ts). */
  private phase = ConnectionPhase.Waiting;
  /** In connectionCounts.active until the socket is gone ('error' and 'close' may both come). */
  private counted = true;
  private lastBodyRead = DOUBLE_ZERO;
  private writeBlockedSince = DOUBLE_ZERO;
  private closingSince = DOUBLE_ZERO;

  // ---- reads (net/shared-read-buffer.ts, net/read-buffers.ts)
  /** Reads land in the shared client buffer, not in fresh buffers from 'data' events. */
  private readonly sharedReads: boolean;
  /** Where the next read lands: the shared buffer, or this connection's own while a request body streams in. */
  private readonly reads = new ReadBufferChoice(sharedClientReadBuffer);
  private readBufferChooserSet = false;
  /** Copies of borrowed body bytes being written (made when a response streams through). */
  private writeCopies: WriteCopies | null = null;
  /** Inside onSharedRead: Node asks for the next read buffer only after it returns. */
  private inReadCallback = false;

  // ---- the virtual server of the previous request: a keep-alive client sends the same Host every time
  private lastHost: string | undefined = undefined;
  private lastServers: ServerNameMatcher<VirtualServer> | null = null;
  private lastServer: VirtualServer | null = null;

  constructor(
    /** Replaced by a net.Socket when a bare handle is tunnelled (takeOverSocket). */
    public socket: ClientSocket,
    private readonly listener: ListenerContext,
    now: number,
  ) {
    this.remoteAddr = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.scheme = listener.scheme;
    this.tlsSocket = listener.scheme === 'https' ? (socket as TLSSocket) : undefined;
    this.headStart = now;
    this.settings = listener.spec.servers.defaultServer.settings;
    if (socket instanceof TcpStream) {
      // A bare handle (net/tcp-stream.ts): reads into the shared buffer, events through TcpStreamOwner.
      this.sharedReads = true;
      socket.start(this, (bytes, buffer) => this.onSharedRead(bytes, buffer), sharedClientReadBuffer);
    } else {
      // Reads land in the shared buffer (net/shared-read-buffer.ts), decrypted ones of TLS sockets too.
      this.sharedReads = readIntoSharedBuffer(socket, (bytes, buffer) => this.onSharedRead(bytes, buffer));
      if (!this.sharedReads) socket.on('data', (d: Buffer) => this.onData(d));
      else if (listener.scheme === 'https') {
        // A TLS socket arrives after its handshake: a request sent in the same
        // flight as the client's Finished may already wait in its stream buffer.
        let early: Buffer | null;
        while ((early = socket.read() as Buffer | null) !== null) this.onData(early);
      }
      this.listenTo(socket);
      socket.on('end', () => this.onEnd());
      socket.on('drain', () => this.onDrain());
    }
    listener.tracker.add(this);
    connectionCounts.handled++;
    connectionCounts.active++;
    connectionCounts.phases[ConnectionPhase.Waiting]!++;
  }

  /** What a net.Socket reports until it is gone (the socket given at accept, or the one a tunnel gets). */
  private listenTo(socket: Socket): void {
    socket.on('error', () => {
      // A TLS socket can stay open after an error (a refused renegotiation): make sure it goes.
      socket.destroy();
      this.onClose();
    });
    socket.on('close', () => this.onClose());
  }

  // ---- TcpStreamOwner: what a bare handle reports
  onTcpConnect(): void {}

  onTcpEnd(): void {
    this.onEnd();
  }

  onTcpError(): void {
    this.socket.destroy();
    this.onClose();
  }

  onTcpClose(): void {
    this.onClose();
  }

  onTcpDrain(): void {
    this.onDrain();
  }

  get draining(): boolean {
    return this.drainRequested;
  }

  // The local address is read only when asked ($server_addr, $server_port,
  // absolute redirects): it costs a getsockname syscall.
  get localAddr(): string {
    return this.socket.localAddress ?? '';
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  // =================================================================== reading

  /**
   * A read into the shared buffer, or into the connection's own while a body
   * streams in: nothing may keep `buffer` past this call, so what stays
   * buffered is copied.
   */
  private onSharedRead(bytes: number, buffer: Buffer): boolean {
    const data = buffer.subarray(0, bytes);
    // After an upgrade the bytes go to the tunnel's 'data' listener; false stops reading while it is paused.
    if (this.state === State.Tunnel) return (this.socket as Socket).push(Buffer.from(data));
    this.inReadCallback = true;
    this.onData(data);
    this.inReadCallback = false;
    const kept = this.buffer;
    if (kept !== null && kept.buffer === buffer.buffer) this.buffer = Buffer.from(kept);
    return true;
  }

  /** A request body streams in: its next reads land in a buffer of this connection's own, lent to the upstream writes. */
  private useOwnReadBuffer(): void {
    if (!this.sharedReads) return;
    if (!this.readBufferChooserSet) {
      const socket = this.socket;
      if (socket instanceof TcpStream) socket.chooseReadBuffers(() => this.reads.next());
      else if (!chooseReadBuffers(socket, () => this.reads.next())) return;
      this.readBufferChooserSet = true;
    }
    this.reads.useOwn();
  }

  keepReadBuffer(): void {
    this.reads.keep();
  }

  readBuffersWrittenOut(): void {
    this.reads.writesDone();
  }

  private onData(data: Buffer): void {
    switch (this.state) {
      case State.Head:
        this.buffer = this.buffer === null ? data : Buffer.concat([this.buffer, data]);
        this.processBuffer();
        return;
      case State.Body:
        this.lastBodyRead = turnNow();
        this.feedBody(data, 0);
        return;
      case State.Responding:
        // Pipelined bytes: keep them for when the current response is done.
        this.buffer = this.buffer === null ? data : Buffer.concat([this.buffer, data]);
        if (this.buffer.length > MAX_PIPELINED) this.pauseReading();
        return;
      default:
        return;
    }
  }

  /** Parses and starts as many requests as the buffer holds, one at a time. */
  private processBuffer(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.state === State.Head && this.buffer !== null && this.parseHead()) {
        // one request per turn; parseHead() returns false when it needs more bytes
      }
    } finally {
      this.processing = false;
    }
  }

  /** The virtual server for a Host value; the previous request's answer when Host and the configuration are the same. */
  private findServer(host: string | undefined): VirtualServer {
    const servers = this.listener.spec.servers;
    if (host === this.lastHost && servers === this.lastServers) return this.lastServer!;
    const server = servers.find(host === undefined ? '' : hostWithoutPort(host));
    this.lastHost = host;
    this.lastServers = servers;
    this.lastServer = server;
    return server;
  }

  /** Parses one request head from the buffer; false when more bytes are needed (or the connection failed). */
  private parseHead(): boolean {
    let buf = this.buffer!;
    // RFC 9112 2.2: empty lines before a request line are ignored.
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    if (start > 0) {
      buf = start === buf.length ? Buffer.alloc(0) : buf.subarray(start);
      this.searchFrom = 0;
      if (buf.length === 0) {
        this.buffer = null;
        return false;
      }
      this.buffer = buf;
    }
    if (this.idle) {
      this.idle = false;
      this.headStart = turnNow();
    }
    if (this.phase !== ConnectionPhase.Reading) {
      connectionCounts.requests++;
      movePhase(this.phase, (this.phase = ConnectionPhase.Reading));
    }
    const found = buf.indexOf(CRLFCRLF, this.searchFrom);
    if (found < 0) {
      const limits = this.settings.headLimits;
      if (buf.length > limits.maxHeadBytes) {
        this.failHead(buf.indexOf(0x0a) < 0 ? 414 : 431);
        return false;
      }
      if (incompleteHeadIsInvalid(buf, 0, buf.length)) {
        this.failHead(400);
        return false;
      }
      this.searchFrom = Math.max(0, buf.length - 3);
      this.buffer = buf;
      return false;
    }
    const end = found + 4;
    this.searchFrom = 0;
    this.buffer = end < buf.length ? buf.subarray(end) : null;
    const head = this.head;
    head.reset();
    const status = parseRequestHead(buf.toString('latin1', 0, found), head, this.settings.headLimits);
    this.requestCount++;
    movePhase(this.phase, (this.phase = ConnectionPhase.Writing));
    const ex = new Exchange(this, this, head, turnNow(), end);
    this.exchange = ex;
    if (status !== 0) {
      this.state = State.Responding;
      this.buffer = null; // nothing behind a bad request is ever processed
      const server = this.listener.spec.servers.defaultServer;
      ex.server = server;
      ex.reject(status);
      return false;
    }
    this.protocol = head.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    this.canChunk = head.versionMinor === 1;
    if (head.hasBody) {
      this.state = State.Body;
      this.bodyChunked = head.chunked;
      this.bodyRemaining = head.contentLength;
      if (head.chunked) this.chunkedBody.reset();
      this.lastBodyRead = turnNow();
    } else {
      this.state = State.Responding;
    }
    const server = this.findServer(head.host);
    this.settings = server.settings;
    const routed = ex.route(server);
    // Body bytes that came with the head are validated (chunk framing,
    // client_max_body_size) before the request goes anywhere: with a warm
    // keep-alive pool the upstream head would otherwise be written at once.
    if (this.state === State.Body && this.buffer !== null) {
      const rest = this.buffer;
      this.buffer = null;
      this.feedBody(rest, 0);
    }
    if (this.state === State.Body) this.useOwnReadBuffer();
    if (routed && !ex.isFinished) ex.run();
    return true;
  }

  private failHead(status: number): void {
    this.buffer = null;
    this.state = State.Responding;
    this.requestCount++;
    if (this.phase !== ConnectionPhase.Reading) connectionCounts.requests++;
    movePhase(this.phase, (this.phase = ConnectionPhase.Writing));
    const head = this.head;
    head.reset();
    head.method = 'GET';
    head.target = '/';
    head.path = '/';
    const ex = new Exchange(this, this, head, performance.now(), 0);
    this.exchange = ex;
    ex.server = this.listener.spec.servers.defaultServer;
    ex.reject(status);
  }

  private feedBody(data: Buffer, offset: number): void {
    const ex = this.exchange!;
    if (!this.bodyChunked) {
      const available = data.length - offset;
      if (available <= this.bodyRemaining) {
        this.bodyRemaining -= available;
        this.forwardBody(ex, offset === 0 ? data : data.subarray(offset));
        if (this.bodyRemaining === 0) this.bodyDone(null);
        return;
      }
      const end = offset + this.bodyRemaining;
      this.bodyRemaining = 0;
      this.forwardBody(ex, data.subarray(offset, end));
      this.bodyDone(data.subarray(end));
      return;
    }
    const decoder = this.chunkedBody;
    let pos = offset;
    while (pos < data.length) {
      pos = decoder.execute(data, pos);
      if (decoder.failed) return this.bodyFramingError();
      // nginx checks each chunk's declared size against client_max_body_size at its size line.
      const limit = ex.bodyLimit;
      if (limit !== 0 && decoder.declaredTotal > limit) return ex.bodyTooLarge();
      if (decoder.spanEnd > decoder.spanStart) this.forwardBody(ex, data.subarray(decoder.spanStart, decoder.spanEnd));
      if (this.state !== State.Body) return; // the exchange gave up on the body (413...)
      if (decoder.done) return this.bodyDone(pos < data.length ? data.subarray(pos) : null);
    }
  }

  /** Shared-buffer bytes are copied for the exchange; bytes in the own read buffer (or owned) are lent (see Exchange.requestData). */
  private forwardBody(ex: Exchange, bytes: Buffer): void {
    if (isSharedReadBuffer(bytes)) ex.requestData(Buffer.from(bytes), false);
    else ex.requestData(bytes, true);
  }

  private bodyFramingError(): void {
    const ex = this.exchange!;
    this.buffer = null;
    this.keepAliveAfterResponse = false;
    if (!ex.isFinished) ex.clientBodyInvalid();
    else this.close();
  }

  private bodyDone(rest: Buffer | null): void {
    this.state = State.Responding;
    this.reads.useShared(this.inReadCallback); // within a read callback no read can land in the own buffer any more
    if (rest !== null && rest.length > 0) this.buffer = rest;
    const ex = this.exchange;
    if (ex === null) return;
    ex.requestEnd();
  }

  private onEnd(): void {
    // The client half-closed. A request already read is still answered;
    // then the connection closes. An idle connection closes now.
    this.peerEnded = true;
    if (this.state === State.Head && this.exchange === null) this.close();
    else if (this.state === State.Body) this.exchange?.clientAborted();
  }

  private onClose(): void {
    this.listener.tracker.remove(this);
    this.writeCopies = null; // writes may still point at them: the GC's, not the free list's
    if (this.counted) {
      this.counted = false;
      movePhase(this.phase, (this.phase = ConnectionPhase.Gone));
      connectionCounts.active--;
    }
    if (this.state === State.Closed) return;
    const wasTunnel = this.state === State.Tunnel;
    this.state = State.Closed;
    if (!wasTunnel) this.exchange?.clientAborted();
    this.exchange = null;
    this.resolveDrainWaiters();
  }

  // =================================================================== ExchangeHost

  exchangeDone(ex: Exchange, keepAlive: boolean): void {
    if (ex !== this.exchange) return;
    this.exchange = null;
    if (this.state === State.Closed || this.state === State.Tunnel) return;
    const settings = this.settings;
    if (!keepAlive || !this.keepAliveAfterResponse || this.state === State.Body) {
      this.close();
      return;
    }
    this.state = State.Head;
    this.idle = true;
    movePhase(this.phase, (this.phase = ConnectionPhase.Waiting));
    this.headStart = turnNow();
    if (settings.keepaliveTimeoutMs === 0) return this.close();
    if (this.paused) this.resumeReading();
    if (this.buffer !== null) this.processBuffer();
  }

  // =================================================================== Downstream: writing

  responseHeaders(): HeaderList {
    return this.headers.reset();
  }

  sendHead(status: number, reason: string, headers: HeaderList, length: number, noBody: boolean, body: Buffer | null, end: boolean): boolean {
    const socket = this.socket;
    if (this.state === State.Closed || socket.destroyed) return true;
    const ex = this.exchange;
    const settings = this.settings;
    let keepAlive = ex !== null && ex.keepAlive && this.requestCount < settings.keepaliveRequests && settings.keepaliveTimeoutMs > 0;
    this.chunkedResponse = false;
    let out = 'HTTP/1.1 ' + status + ' ' + reason + '\r\n' + headers.raw;
    const names = headers.names;
    const values = headers.values;
    for (let i = 0; i < names.length; i++) out += names[i] + ': ' + values[i] + '\r\n';
    if (noBody) {
      if (length >= 0 && status !== 204 && status >= 200) out += 'Content-Length: ' + length + '\r\n';
    } else if (length >= 0) {
      out += 'Content-Length: ' + length + '\r\n';
    } else if (this.canChunk && settings.chunkedTransferEncoding) {
      this.chunkedResponse = true;
      out += 'Transfer-Encoding: chunked\r\n';
    } else {
      keepAlive = false; // the body ends when the connection closes
    }
    if (this.peerEnded || this.drainRequested) keepAlive = false;
    this.keepAliveAfterResponse = keepAlive;
    out += keepAlive ? 'Connection: keep-alive\r\n\r\n' : 'Connection: close\r\n\r\n';
    if (body === null || noBody) {
      if (end && this.chunkedResponse) out += LAST_CHUNK;
      writeAtEndOfTurn(socket, out);
    } else if (body.length <= TEXT_WRITE_LIMIT && !this.chunkedResponse) {
      // Head and body as one latin1 string: Node copies a string write straight
      // into the socket (no Buffer object, no flattened copy of the head).
      writeAtEndOfTurn(socket, out + body.toString('latin1', 0, body.length));
    } else if (body.length <= SINGLE_WRITE_LIMIT && !this.chunkedResponse) {
      const buf = Buffer.allocUnsafe(out.length + body.length);
      buf.write(out, 0, 'latin1');
      body.copy(buf, out.length);
      writeAtEndOfTurn(socket, buf);
    } else {
      flushTurnWrites();
      socket.cork();
      socket.write(out, 'latin1');
      this.writeChunk(this.copyForWrite(body)); // borrowed: copy what may be queued
      if (end && this.chunkedResponse) socket.write(LAST_CHUNK_BUF);
      socket.uncork();
    }
    return this.noteWriteState();
  }

  sendBody(borrowed: Buffer): boolean {
    if (this.state === State.Closed) return true;
    // The chunk may live in a shared read buffer and the write may be queued: copy it.
    this.writeBodyBytes(this.copyForWrite(borrowed));
    return this.noteWriteState();
  }

  lendBody(chunk: Buffer): number {
    if (this.state === State.Closed) return 0;
    this.writeBodyBytes(chunk);
    // Nothing left in Node's queue: the kernel (or TLS) took every byte and nothing points at the chunk any more.
    const kept = this.socket.writableLength > 0 ? BodyWrite.Kept : 0;
    return this.noteWriteState() ? kept : kept | BodyWrite.Blocked;
  }

  /** Body bytes after the head (which may still wait for the end of the turn): one write, chunk-framed when needed. */
  private writeBodyBytes(chunk: Buffer): void {
    // Never an empty write: on a TLS socket it makes Node decrypt and deliver
    // pending input at once, into the shared read buffer a read callback may be using.
    if (chunk.length === 0) return;
    flushTurnWrites();
    if (this.chunkedResponse) {
      this.socket.cork();
      this.writeChunk(chunk);
      this.socket.uncork();
    } else {
      this.socket.write(chunk);
    }
  }

  private writeChunk(chunk: Buffer): void {
    if (!this.chunkedResponse) {
      this.socket.write(chunk);
      return;
    }
    if (chunk.length === 0) return; // an empty chunk would end the body
    this.socket.write(chunk.length.toString(16) + '\r\n', 'latin1');
    this.socket.write(chunk);
    this.socket.write(CRLF_BUF);
  }

  private copyForWrite(borrowed: Buffer): Buffer {
    return (this.writeCopies ??= new WriteCopies()).copy(borrowed);
  }

  private noteWriteState(): boolean {
    // Nothing pending: the copies written so far are out (writes complete in order).
    if (this.writeCopies !== null && this.socket.writableLength === 0) this.writeCopies.writesDone();
    if (this.socket.writableNeedDrain) {
      if (this.writeBlockedSince === 0) this.writeBlockedSince = performance.now();
      return false;
    }
    return true;
  }

  endBody(): void {
    if (this.state === State.Closed) return;
    flushTurnWrites();
    if (this.chunkedResponse) this.socket.write(LAST_CHUNK_BUF);
  }

  abort(_reason: string): void {
    if (this.state === State.Closed) return;
    this.keepAliveAfterResponse = false;
    // A reset, not a FIN: a close-delimited body must not look complete.
    if (!this.socket.destroyed) {
      try {
        this.socket.resetAndDestroy();
      } catch {
        this.socket.destroy();
      }
    }
    this.onClose();
  }

  pauseRequestBody(): void {
    if (this.state === State.Body) this.pauseReading();
  }

  resumeRequestBody(): void {
    if (this.state === State.Body) this.resumeReading();
  }

  sendContinue(): void {
    if (this.head.versionMinor !== 1) return;
    flushTurnWrites();
    this.socket.write(CONTINUE, 'latin1');
  }

  takeOverSocket(): { socket: Socket; buffered: Buffer | null } | undefined {
    if (this.state === State.Closed) return undefined;
    this.state = State.Tunnel;
    flushTurnWrites();
    let socket: Socket;
    if (this.socket instanceof TcpStream) {
      // The tunnel relays with streams: the handle goes to a net.Socket.
      socket = this.socket.toNetSocket();
      this.socket = socket;
      this.paused = false;
      this.listenTo(socket);
    } else {
      socket = this.socket;
      socket.removeAllListeners('data');
      socket.removeAllListeners('end');
      socket.removeAllListeners('drain');
    }
    const buffered = this.buffer;
    this.buffer = null;
    this.resumeReading();
    return { socket, buffered };
  }

  connectionsFromClient(): number {
    return this.listener.tracker.connectionsFrom(this.remoteAddr);
  }

  waitForDrain(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.state === State.Closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private onDrain(): void {
    this.writeBlockedSince = 0;
    this.writeCopies?.writesDone();
    this.exchange?.downstreamDrain();
    this.resolveDrainWaiters();
  }

  private resolveDrainWaiters(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  // =================================================================== lifecycle

  private pauseReading(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resumeReading(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Closes after flushing what was written.
   *
   * As nginx with `lingering_close on` (its default): when the client has
   * nothing more to send that fulcrum knows of (its request was read whole,
   * nothing is pipelined behind it, reading is not paused with bytes left in
   * the kernel) and the response is all in the kernel,
   * the socket is closed at once; the kernel still delivers the response,
   * then the FIN. Otherwise (a body left unread, pipelined bytes, a response
   * still queued, TLS, whose close_notify goes with end()) the write side is
   * shut and the connection lingers until the client closes: closing with
   * unread input would send a reset that can destroy the response before the
   * client reads it. A lingering connection stays tracked until the socket is
   * gone; a client that never closes its side is cut by the sweep after
   * LINGER_MS (no timer per connection).
   */
  close(): void {
    if (this.state === State.Closed) return;
    const requestReadWhole = this.state !== State.Body;
    this.state = State.Closed;
    movePhase(this.phase, (this.phase = ConnectionPhase.Gone));
    this.closingSince = performance.now();
    const nothingUnread = !this.paused && (this.peerEnded || (requestReadWhole && this.buffer === null));
    const destroyOnceWritten = this.scheme === 'http' && nothingUnread;
    // After the response, which may still wait for the end of the turn.
    actAtEndOfTurn(this.socket, (socket) => {
      if (destroyOnceWritten && socket.writableLength === 0 && unsentBytes(socket) === 0) socket.destroy();
      else socket.end();
    });
    this.exchange = null;
    this.resolveDrainWaiters();
  }

  /**
   * Reload: the next response says Connection: close, so the client closes
   * the connection itself; an idle connection is not closed under it (that
   * race is what loses requests on nginx reloads).
   */
  drain(): void {
    this.drainRequested = true;
  }

  /** Shutdown: closes the connection if no request is in progress (a new one only after FIRST_REQUEST_GRACE_MS). */
  closeIfIdle(now = performance.now()): boolean {
    if (this.state === State.Closed) {
      this.socket.destroy();
      return true;
    }
    if (this.state === State.Head && this.exchange === null && this.buffer === null && (this.idle || now - this.headStart >= FIRST_REQUEST_GRACE_MS)) {
      this.close();
      return true;
    }
    this.drainRequested = true;
    return false;
  }

  /** Timeouts, checked by the tracker every sweep. */
  checkTimeouts(now: number): void {
    const settings = this.settings;
    switch (this.state) {
      case State.Head:
        if (this.idle ? now - this.headStart > settings.keepaliveTimeoutMs : now - this.headStart > settings.clientHeaderTimeoutMs) {
          if (this.idle || this.buffer === null) this.close();
          else this.failHead(408);
        }
        return;
      case State.Body:
        if (now - this.lastBodyRead > settings.clientBodyTimeoutMs) this.exchange?.clientBodyTimedOut();
        else this.exchange?.checkTimeouts(now);
        return;
      case State.Responding:
        if (this.exchange !== null) this.exchange.checkTimeouts(now);
        else if (this.writeBlockedSince !== 0 && now - this.writeBlockedSince > settings.sendTimeoutMs) this.abort('send timeout');
        return;
      case State.Closed:
        if (now - this.closingSince > LINGER_MS) this.socket.destroy();
        return;
      default:
        return;
    }
  }
}
