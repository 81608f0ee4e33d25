/**
 * An outgoing TCP connection on a bare libuv handle, without net.Socket.
 *
 * Why: an upstream connection made with `net.connect()` costs ~130 µs of
 * JavaScript to open and ~70 µs to close on a loaded proxy (measured in the
 * c50 benchmark, docs/benchmarks.md): a Duplex stream with its two state
 * objects, an EventEmitter, a DNS-free lookup step in a nextTick, the
 * 'connect' and 'close' emits, each in a function V8 sees only a few dozen
 * times a second and so runs unoptimized. nginx's upstream `keepalive_requests
 * 1000` default replaces every connection after 1,000 requests, ~65 times a
 * second at c50, and each replacement stalled the whole event loop turn it
 * fell into (~290 µs against ~215 µs for the turn itself): that was most of
 * fulcrum's p99. Node's own handle calls are what remain here: a TCP handle,
 * a connect request, reads into a buffer the caller chooses (the same shared
 * `onread` as every other socket, shared-read-buffer.ts), writes through
 * WriteWrap requests, and close.
 *
 * Only what an upstream connection needs: connect to an IP address, read,
 * write (with cork/uncork batching and Node's backpressure signals:
 * `write()` returns false at 16 KiB pending, `onTcpDrain` when all is
 * written), pause/resume reading, destroy. TLS upstreams, tunnels (WebSocket,
 * relayed with stream pipes) and host names keep net.Socket. The bindings are
 * Node's `tcp_wrap` and `stream_wrap` (`process.binding`, kept for
 * compatibility); when either is missing or changed, `tcpStreamsAvailable` is
 * false and callers use net.Socket (test/unit/tcp-stream.test.ts says which).
 */
import { hookHandleReads, type HookableHandle } from './shared-read-buffer.js';
import { errnoError, streamWrap } from './stream-binding.js';

/** What the connection reports to its owner. Called from libuv callbacks, never from within a call into the stream. */
export interface TcpStreamOwner {
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

interface TcpHandle extends HookableHandle {
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
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
    for (const m of ['connect', 'connect6', 'setNoDelay', 'useUserBuffer', 'readStart', 'readStop', 'writeLatin1String', 'writeBuffer', 'writev', 'close'] as const) {
      if (typeof p[m] !== 'function') return null;
    }
    return b as TcpWrapBinding;
  } catch {
    return null;
  }
}

/** Whether this Node lets fulcrum open TCP connections on bare handles. */
export const tcpStreamsAvailable = tcpWrap !== null && streamWrap !== null;

/** Node's default highWaterMark for sockets: write() says "wait" at this many pending bytes. */
const HIGH_WATER_MARK = 16384;
const UV_EOF = -4095;

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

export class TcpStream {
  private readonly handle: TcpHandle;
  /** Closed once destroy() was called: the handle is closing or closed. */
  private state = State.Connecting;
  /** Writes made while connecting or corked: [data, encoding, ...] as Node's writev takes them. */
  private held: unknown[] | null = null;
  private heldBytes = 0;
  private corks = 0;
  private needDrain = false;
  private drainScheduled = false;
  private paused = false;
  /** Set once an error or end was reported, so a failure is reported once. */
  private reported = false;

  /**
   * Starts connecting to `address` (an IPv4 or IPv6 literal; `family` 4 or
   * 6). Reads land in `firstBuffer`, then in whatever `choose` returns after
   * each read callback.
   */
  constructor(
    private readonly owner: TcpStreamOwner,
    address: string,
    port: number,
    family: 4 | 6,
    onRead: TcpReadCallback,
    firstBuffer: Uint8Array,
    choose: () => Uint8Array,
  ) {
    const binding = tcpWrap!;
    const handle = new binding.TCP(binding.constants.SOCKET);
    this.handle = handle;
    handle.fulcrumTcp = this;
    // libuv applies TCP_NODELAY when it creates the socket for connect().
    handle.setNoDelay(true);
    handle.useUserBuffer(firstBuffer);
    hookHandleReads(handle, this, firstBuffer, onRead, choose, onReadEnd);
    const req = new binding.TCPConnectWrap();
    req.oncomplete = onConnectComplete;
    req.stream = this;
    req.address = address;
    req.port = port;
    const err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
    if (err !== 0) {
      req.stream = null;
      this.failLater(errnoError(err, 'connect', address, port));
    }
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
      this.handle.readStop();
      this.owner.onTcpEnd();
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
