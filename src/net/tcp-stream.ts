/**
 * A TCP connection on a bare libuv handle, without net.Socket: outgoing
 * (upstream connections to IP addresses) and accepted (plain-HTTP clients).
 *
 * Why: a net.Socket costs ~130 µs of JavaScript to open and ~70 µs to close
 * on a loaded proxy (measured in the c50 benchmark, docs/benchmarks.md): a
 * Duplex stream with its two state objects, an EventEmitter, a DNS-free
 * lookup step in a nextTick, the 'connect' and 'close' emits, each in a
 * function V8 sees only a few dozen times a second and so runs unoptimized.
 * nginx's upstream `keepalive_requests 1000` default replaces every
 * connection after 1,000 requests, ~65 times a second at c50, and each
 * replacement stalled the whole event loop turn it fell into (~290 µs against
 * ~215 µs for the turn itself): that was most of fulcrum's p99. On the client
 * side every new connection pays the same: a server that answers and closes
 * with net.Socket needed 63 µs of CPU per connection, 32 µs on bare handles
 * (a 30-line accept-answer-close server, wrk with "Connection: close"). Node's own handle
 * calls are what remain here: a TCP handle, a connect request (or the handle
 * the listening socket accepted), reads into a buffer the caller chooses (the
 * same shared `onread` as every other socket, shared-read-buffer.ts), writes
 * through WriteWrap requests, shutdown, reset and close.
 *
 * Only what a proxied HTTP/1 connection needs: read, write (with cork/uncork
 * batching and Node's backpressure signals: `write()` returns false at 16 KiB
 * pending, `onTcpDrain` when all is written), pause/resume reading, end (with
 * half-close: the stream closes once both sides have ended), reset, destroy.
 * TLS, tunnels (WebSocket, relayed with stream pipes: `toNetSocket()` hands the handle
 * over) and upstream host names keep net.Socket. The bindings are Node's
 * `tcp_wrap` and `stream_wrap` (`process.binding`, kept for compatibility);
 * when either is missing or changed, `tcpStreamsAvailable` is false and
 * callers use net.Socket (test/unit/tcp-stream.test.ts says which).
 */
import { Socket, type Server } from 'node:net';
import { chooseHandleReadBuffers, hookHandleReads, readIntoSharedBuffer, type HookableHandle } from './shared-read-buffer.js';
import { errnoError, streamWrap } from './stream-binding.js';

/** What the connection reports to its owner. Called from libuv callbacks, never from within a call into the stream. */
export interface TcpStreamOwner {
  /** An outgoing connection is established (never called for an accepted one). */
  onTcpConnect(): void;
  /** The peer ended its side (FIN). */
  onTcpEnd(): void;
  onTcpError(err: NodeJS.ErrnoException): void;
  /** The handle is closed (after destroy(), which any end or error is followed by). Called once. */
  onTcpClose(): void;
  /** Everything written was taken by the kernel after a write() returned false. */
  onTcpDrain(): void;
}

/** Returns false to stop reading (backpressure), as Node's `onread.callback`. */
export type TcpReadCallback = (bytes: number, buffer: Buffer) => boolean;

/** A libuv TCP handle as Node's `tcp_wrap` binding exposes it. */
export interface TcpHandle extends HookableHandle {
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
  getpeername(out: SocketAddress): number;
  getsockname(out: SocketAddress): number;
  shutdown(req: object): number;
  reset(callback: (this: TcpHandle) => void): number;
  /** Node's own flag (net.Socket reads it before starting to read). */
  reading?: boolean;
  setNoDelay(enable: boolean): number;
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  writeLatin1String(req: object, data: string): number;
  writeBuffer(req: object, data: Uint8Array): number;
  writev(req: object, chunks: unknown[], allBuffers: boolean): number;
  close(callback: (this: TcpHandle) => void): void;
  readonly writeQueueSize: number;
  fulcrumTcp?: TcpStream;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number };
}

interface SocketAddress {
  address?: string;
  port?: number;
  family?: string;
}

interface ShutdownRequest {
  handle: TcpHandle;
  oncomplete: (this: ShutdownRequest, status: number) => void;
  stream: TcpStream | null;
}

interface ConnectRequest {
  oncomplete: (this: ConnectRequest, status: number) => void;
  stream: TcpStream | null;
  address: string;
  port: number;
}

interface WriteRequest {
  handle: TcpHandle | null;
  oncomplete: (this: WriteRequest, status: number) => void;
  /** While libuv holds the request: the stream to tell, and what keeps the written bytes alive. */
  stream: TcpStream | null;
  data: unknown;
}

const tcpWrap = loadTcpWrap();

function loadTcpWrap(): TcpWrapBinding | null {
  try {
    const b = (process as unknown as { binding(name: string): Partial<TcpWrapBinding> }).binding('tcp_wrap');
    if (typeof b.TCP !== 'function' || typeof b.TCPConnectWrap !== 'function' || typeof b.constants?.SOCKET !== 'number') return null;
    const p = b.TCP.prototype as Partial<TcpHandle>;
    for (const m of ['connect', 'connect6', 'getpeername', 'getsockname', 'shutdown', 'reset', 'setNoDelay', 'useUserBuffer', 'readStart', 'readStop', 'writeLatin1String', 'writeBuffer', 'writev', 'close'] as const) {
      if (typeof p[m] !== 'function') return null;
    }
    return b as TcpWrapBinding;
  } catch {
    return null;
  }
}

/** Whether this Node lets fulcrum open TCP connections on bare handles. */
export const tcpStreamsAvailable = tcpWrap !== null && streamWrap !== null && typeof streamWrap.ShutdownWrap === 'function';

/** What a listening handle calls per accepted connection (Node sets it in net.Server's listen). */
export type OnConnection = (this: unknown, status: number, clientHandle: unknown) => void;

/**
 * Makes the listening `server` (plain TCP, already listening) hand each
 * accepted connection to `accept` as a TcpStream, with no net.Socket made:
 * the listening handle calls `onconnection` with each accepted handle (in a
 * cluster worker too, where the handle is shared), so fulcrum's function
 * goes there; Node's is kept for accept errors, which it reports as the
 * server's 'error'. 'connection' events and the server's connection count
 * are no longer kept. False: not possible here; nothing was changed.
 */
export function acceptOnBareHandles(server: Server, accept: (stream: TcpStream) => void): boolean {
  if (!tcpStreamsAvailable) return false;
  const handle = (server as unknown as { _handle?: { onconnection?: OnConnection } | null })._handle;
  const nodeOnConnection = handle?.onconnection;
  if (handle === null || handle === undefined || typeof nodeOnConnection !== 'function') return false;
  handle.onconnection = function (this: unknown, status: number, clientHandle: unknown): void {
    if (status !== 0 || clientHandle === undefined) return nodeOnConnection.call(this, status, clientHandle);
    accept(TcpStream.adopt(clientHandle));
  };
  return true;
}

/** Node's default highWaterMark for sockets: write() says "wait" at this many pending bytes. */
const HIGH_WATER_MARK = 16384;
const UV_EOF = -4095;
const UV_ENOTCONN = -107;

/** The request object for the next write; replaced when libuv keeps one. */
let spareWrite: WriteRequest | null = null;

function newWriteRequest(): WriteRequest {
  const req = new streamWrap!.WriteWrap() as WriteRequest;
  req.handle = null;
  req.oncomplete = onWriteComplete;
  req.stream = null;
  req.data = null;
  return req;
}

function onWriteComplete(this: WriteRequest, status: number): void {
  const stream = this.stream;
  this.stream = null;
  this.data = null;
  this.handle = null;
  if (stream !== null) stream.writeCompleted(status);
}

function onConnectComplete(this: ConnectRequest, status: number): void {
  const stream = this.stream;
  this.stream = null;
  if (stream !== null) stream.connectCompleted(status, this.address, this.port);
}

function onShutdownComplete(this: ShutdownRequest, status: number): void {
  const stream = this.stream;
  this.stream = null;
  if (stream !== null) stream.shutdownCompleted(status);
}

function drainLater(stream: TcpStream): void {
  stream.drainIfEmpty();
}

/** Reads that brought no bytes: end of file or an error (the shared onread passes them here). */
function onReadEnd(this: TcpHandle): void {
  const stream = this.fulcrumTcp;
  if (stream !== undefined) stream.readEnded(streamWrap!.streamBaseState[streamWrap!.kReadBytesOrError]!);
}

/** The handle's close callback (Node calls it with the handle as `this`). */
function onHandleClose(this: TcpHandle): void {
  const stream = this.fulcrumTcp;
  this.fulcrumTcp = undefined;
  if (stream !== undefined) stream.closed();
}

const enum State {
  Connecting,
  Open,
  Closed,
}

/** An adopted stream's owner until start(): it has reported nothing yet. */
const NO_OWNER: TcpStreamOwner = {
  onTcpConnect() {},
  onTcpEnd() {},
  onTcpError() {},
  onTcpClose() {},
  onTcpDrain() {},
};

export class TcpStream {
  /** Writes made while connecting or corked: [data, encoding, ...] as Node's writev takes them. */
  private held: unknown[] | null = null;
  private heldBytes = 0;
  private corks = 0;
  private needDrain = false;
  private drainScheduled = false;
  private paused = false;
  /** Set once an error or end was reported, so a failure is reported once. */
  private reported = false;
  /** end() was called: the write side is shut once what was written is out. */
  private ending = false;
  /** Our FIN is sent (shutdown completed). */
  private writeEnded = false;
  /** The peer's FIN came. */
  private peerEnded = false;
  private peer: SocketAddress | undefined = undefined;

  private constructor(
    private readonly handle: TcpHandle,
    private owner: TcpStreamOwner,
    /** Closed once destroy() was called: the handle is closing or closed (or handed to a net.Socket). */
    private state: State,
  ) {
    handle.fulcrumTcp = this;
  }

  /**
   * Starts connecting to `address` (an IPv4 or IPv6 literal; `family` 4 or
   * 6). Reads land in `firstBuffer`, then in whatever `choose` returns after
   * each read callback.
   */
  static connect(
    owner: TcpStreamOwner,
    address: string,
    port: number,
    family: 4 | 6,
    onRead: TcpReadCallback,
    firstBuffer: Uint8Array,
    choose: () => Uint8Array,
  ): TcpStream {
    const binding = tcpWrap!;
    const handle = new binding.TCP(binding.constants.SOCKET);
    const stream = new TcpStream(handle, owner, State.Connecting);
    // libuv applies TCP_NODELAY when it creates the socket for connect().
    handle.setNoDelay(true);
    handle.useUserBuffer(firstBuffer);
    hookHandleReads(handle, stream, firstBuffer, onRead, choose, onReadEnd);
    const req = new binding.TCPConnectWrap();
    req.oncomplete = onConnectComplete;
    req.stream = stream;
    req.address = address;
    req.port = port;
    const err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
    if (err !== 0) {
      req.stream = null;
      stream.failLater(errnoError(err, 'connect', address, port));
    }
    return stream;
  }

  /**
   * Wraps a handle a listening socket accepted (what a net.Server's handle
   * passes to its `onconnection`). Nothing is read until start().
   */
  static adopt(handle: unknown): TcpStream {
    const tcp = handle as TcpHandle;
    tcp.setNoDelay(true);
    return new TcpStream(tcp, NO_OWNER, State.Open);
  }

  /** An adopted stream starts reading: into `firstBuffer`, and into what a chooser gives once chooseReadBuffers() set one. */
  start(owner: TcpStreamOwner, onRead: TcpReadCallback, firstBuffer: Uint8Array): void {
    this.owner = owner;
    if (this.state !== State.Open) return;
    this.handle.useUserBuffer(firstBuffer);
    hookHandleReads(this.handle, this, firstBuffer, onRead, null, onReadEnd);
    this.startReading();
  }

  /** Lets `choose` pick where each next read lands (called after every read callback). */
  chooseReadBuffers(choose: () => Uint8Array): void {
    chooseHandleReadBuffers(this.handle, choose);
  }

  /** The peer's address (as net.Socket's remoteAddress); read once, on first use. */
  get remoteAddress(): string | undefined {
    return this.peerAddress().address;
  }

  get remotePort(): number | undefined {
    return this.peerAddress().port;
  }

  /** The local address: a getsockname call each time (rarely asked). */
  get localAddress(): string | undefined {
    return this.sockName().address;
  }

  get localPort(): number | undefined {
    return this.sockName().port;
  }

  private peerAddress(): SocketAddress {
    if (this.peer === undefined) {
      const out: SocketAddress = {};
      if (this.state !== State.Closed) this.handle.getpeername(out);
      this.peer = out;
    }
    return this.peer;
  }

  private sockName(): SocketAddress {
    const out: SocketAddress = {};
    if (this.state !== State.Closed) this.handle.getsockname(out);
    return out;
  }

  get destroyed(): boolean {
    return this.state === State.Closed;
  }

  get connecting(): boolean {
    return this.state === State.Connecting;
  }

  /** Bytes not yet taken by the kernel. */
  get writableLength(): number {
    return this.heldBytes + (this.state === State.Open ? this.handle.writeQueueSize : 0);
  }

  /** A write() returned false and the drain has not come yet. */
  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  /**
   * Writes `data` (a string as latin1) after everything written before. The
   * bytes of a Buffer must stay unchanged until writableLength says they are
   * taken. Returns false when the caller should wait for onTcpDrain.
   */
  write(data: string | Uint8Array, _encoding?: 'latin1'): boolean {
    if (this.destroyed) return false;
    const length = typeof data === 'string' ? data.length : data.byteLength;
    if (this.corks > 0 || this.state !== State.Open) {
      (this.held ??= []).push(data, typeof data === 'string' ? 'latin1' : 'buffer');
      this.heldBytes += length;
    } else {
      const req = spareWrite ?? (spareWrite = newWriteRequest());
      req.handle = this.handle;
      const err = typeof data === 'string' ? this.handle.writeLatin1String(req, data) : this.handle.writeBuffer(req, data);
      this.dispatched(req, err, data);
    }
    return this.checkPending();
  }

  /** Holds writes until uncork(), then sends them in one writev. */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0 && this.state === State.Open) this.flushHeld();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (this.state === State.Open) this.handle.readStop();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.state === State.Open) this.startReading();
  }

  /** Closes the connection; unsent bytes are dropped. onTcpClose follows. */
  destroy(): void {
    if (this.state === State.Closed) return;
    this.held = null;
    this.heldBytes = 0;
    this.state = State.Closed;
    // A pending connect or write request is cancelled by the close; its callback then finds the stream destroyed.
    this.handle.close(onHandleClose);
  }

  /**
   * Ends the write side once everything written is out (FIN), as net.Socket's
   * end() with allowHalfOpen: reading goes on, and the stream closes when
   * the peer has ended its side too.
   */
  end(): void {
    if (this.state === State.Closed || this.ending) return;
    this.ending = true;
    this.corks = 0;
    if (this.state === State.Open) {
      this.flushHeld();
      this.shutdown();
    }
  }

  /** Closes with a reset (RST), not a FIN: unsent bytes are dropped. onTcpClose follows. */
  resetAndDestroy(): void {
    if (this.state === State.Closed) return;
    this.held = null;
    this.heldBytes = 0;
    this.state = State.Closed;
    if (this.handle.reset(onHandleClose) !== 0) this.handle.close(onHandleClose);
  }

  /**
   * Hands the handle to a net.Socket (for a tunnel, relayed with streams):
   * what was written is written first, and this stream is closed without
   * closing the handle (no onTcpClose; the socket reports from now on). The
   * handle keeps reading into a user buffer (libuv cannot be switched back),
   * so the socket reads into the shared one and pushes copies, as TLS
   * sockets in a tunnel do (shared-read-buffer.ts).
   */
  toNetSocket(): Socket {
    this.corks = 0;
    if (this.state === State.Open) this.flushHeld();
    this.state = State.Closed;
    this.held = null;
    this.heldBytes = 0;
    const handle = this.handle;
    handle.fulcrumTcp = undefined;
    // Stopped so that the socket starts it again itself (it checks `reading`).
    handle.readStop();
    handle.reading = false;
    const socket = new Socket({ handle, allowHalfOpen: true, readable: true, writable: true } as unknown as ConstructorParameters<typeof Socket>[0]);
    if (!readIntoSharedBuffer(socket, (bytes, buffer) => socket.push(Buffer.from(buffer.subarray(0, bytes))))) {
      socket.destroy(new Error('the connection could not be handed to a net.Socket on this Node'));
    }
    return socket;
  }

  private shutdown(): void {
    const req = new streamWrap!.ShutdownWrap!() as ShutdownRequest;
    req.oncomplete = onShutdownComplete;
    req.handle = this.handle;
    req.stream = this;
    const err = this.handle.shutdown(req);
    if (err === 0) return;
    req.stream = null;
    if (err === 1 || err === UV_ENOTCONN) this.shutdownCompleted(0); // done at once, as Node treats these
    else this.failLater(errnoError(err, 'shutdown'));
  }

  /** @internal our FIN is sent. */
  shutdownCompleted(status: number): void {
    if (this.destroyed) return;
    if (status < 0) return this.fail(errnoError(status, 'shutdown'));
    this.writeEnded = true;
    if (this.peerEnded) this.destroy();
  }

  /** @internal the handle is closed. */
  closed(): void {
    this.owner.onTcpClose();
  }

  /** @internal the connect request completed. */
  connectCompleted(status: number, address: string, port: number): void {
    if (this.destroyed) return;
    if (status < 0) return this.fail(errnoError(status, 'connect', address, port));
    this.state = State.Open;
    if (!this.paused) this.startReading();
    if (this.destroyed) return;
    if (this.held !== null && this.corks === 0) this.flushHeld();
    if (this.destroyed) return;
    if (this.ending) this.shutdown();
    if (this.destroyed) return;
    this.owner.onTcpConnect();
  }

  /** @internal a write libuv held completed. */
  writeCompleted(status: number): void {
    if (this.destroyed) return;
    if (status < 0) return this.fail(errnoError(status, 'write'));
    if (this.needDrain && this.writableLength === 0) {
      this.needDrain = false;
      this.owner.onTcpDrain();
    }
  }

  /** @internal end of stream or a read error. */
  readEnded(nread: number): void {
    if (this.destroyed || nread === 0) return;
    if (nread === UV_EOF) {
      if (this.reported) return;
      this.reported = true;
      this.peerEnded = true;
      this.handle.readStop();
      this.owner.onTcpEnd();
      // Both sides ended: nothing more can move (net.Socket's allowHalfOpen ends the same way).
      if (this.writeEnded) this.destroy();
      return;
    }
    this.fail(errnoError(nread, 'read'));
  }

  private startReading(): void {
    const err = this.handle.readStart();
    if (err !== 0) this.fail(errnoError(err, 'read'));
  }

  private flushHeld(): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    this.heldBytes = 0;
    const req = spareWrite ?? (spareWrite = newWriteRequest());
    req.handle = this.handle;
    const err = held.length === 2
      ? typeof held[0] === 'string' ? this.handle.writeLatin1String(req, held[0]) : this.handle.writeBuffer(req, held[0] as Uint8Array)
      : this.handle.writev(req, held, false);
    this.dispatched(req, err, held);
    this.checkPending();
  }

  private dispatched(req: WriteRequest, err: number, data: unknown): void {
    if (err !== 0) {
      req.handle = null;
      this.failLater(errnoError(err, 'write'));
      return;
    }
    if (streamWrap!.streamBaseState[streamWrap!.kLastWriteWasAsync] !== 0) {
      // libuv keeps the request until its bytes are out: it points at them (Buffers are not copied).
      req.stream = this;
      req.data = data;
      spareWrite = null;
    } else {
      req.handle = null;
    }
  }

  private checkPending(): boolean {
    const pending = this.writableLength;
    if (pending >= HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    // Bytes that were held (corked, or written while connecting) went out at once: the drain the caller waits for comes after its call, as Node's does.
    if (pending === 0 && this.needDrain && !this.drainScheduled) {
      this.drainScheduled = true;
      process.nextTick(drainLater, this);
    }
    return true;
  }

  /** @internal the drain promised by checkPending(). */
  drainIfEmpty(): void {
    this.drainScheduled = false;
    if (this.destroyed || !this.needDrain || this.writableLength !== 0) return;
    this.needDrain = false;
    this.owner.onTcpDrain();
  }

  /** Reports an error found inside a call made by the owner (a write) once that call has returned, as Node does. */
  private failLater(err: NodeJS.ErrnoException): void {
    process.nextTick(() => {
      if (!this.destroyed) this.fail(err);
    });
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (!this.reported) {
      this.reported = true;
      this.owner.onTcpError(err);
    }
    this.destroy();
  }
}
