/**
 * Writes handed straight to the socket's handle, past Node's Writable stream.
 *
 * `socket.write()` runs the Writable state machine per call: a WriteWrap
 * object with six properties, the write through `Socket._writeGeneric`,
 * `afterWriteDispatched`, the `onwrite` bookkeeping and a callback. For the
 * proxy's two small writes per request (the upstream request head, a small
 * response) that is ~0.7 µs of ~15 and a fifth of the per-request garbage
 * (docs/benchmarks.md). When Node's queue for the socket is empty, the same
 * handle call it would make (`writeLatin1String`, `writeBuffer`) is made here
 * with one request object reused for every write the kernel takes at once,
 * which is nearly all of them: libuv tries the write synchronously and only
 * keeps the request when bytes are left over.
 *
 * Order is kept by libuv: a write to a handle with queued writes is queued
 * behind them, whichever path issued it, and `end()` (a shutdown request)
 * waits for them too. What Node's stream does not see is the bytes of a
 * direct write that the kernel did not take at once: `unsentDirectBytes()`
 * reports them for the one decision that needs it (may a socket be destroyed
 * yet), and while any such write is in flight further writes to that socket
 * go through Node's stream, whose backpressure accounting then covers them.
 *
 * Plain TCP only. A TLS handle completes every write asynchronously (in a
 * later immediate) and aborts the process if a second write reaches it
 * before that (TLSWrap::DoWrite's CHECK), which Node's stream never does
 * because it issues one write at a time; TLS sockets keep Node's path.
 *
 * `WriteWrap` comes from `process.binding('stream_wrap')` (stream-binding.ts);
 * without it (or a handle without those methods) every write goes through
 * `socket.write()`, and test/unit/direct-write.test.ts says which path this
 * Node takes.
 */
import type { Socket } from 'node:net';
import { errnoError, streamWrap } from './stream-binding.js';

interface StreamHandle {
  writeLatin1String(req: object, data: string): number;
  writeBuffer(req: object, data: Uint8Array): number;
  readonly writeQueueSize: number;
}

interface WriteRequest {
  handle: StreamHandle | null;
  oncomplete: (this: WriteRequest, status: number) => void;
  /** Set while libuv holds the request: the socket to fail, the bytes to keep alive. */
  socket: Socket | null;
  buffer: Uint8Array | null;
}

type SocketInternals = Socket & { _handle: Partial<StreamHandle> | null; connecting: boolean; encrypted?: boolean };

const binding = streamWrap;

/** Whether this Node lets fulcrum write to handles directly. */
export const directWritesAvailable = binding !== null;

/** Direct writes libuv still holds (the kernel did not take all their bytes at once); nearly always 0. */
let inFlight = 0;
/** The request object for the next write; replaced when libuv keeps one. */
let spare: WriteRequest | null = null;

function onDirectWriteComplete(this: WriteRequest, status: number): void {
  inFlight--;
  const socket = this.socket;
  this.socket = null;
  this.buffer = null;
  this.handle = null;
  if (status < 0 && socket !== null && !socket.destroyed) socket.destroy(errnoError(status, 'write'));
}

function newRequest(): WriteRequest {
  const req = new binding!.WriteWrap() as WriteRequest;
  req.handle = null;
  req.oncomplete = onDirectWriteComplete;
  req.socket = null;
  req.buffer = null;
  return req;
}

/** Writes `data` (a string as latin1) to `socket`, through its handle when nothing is queued in Node's stream. */
export function writeDirect(socket: Socket, data: string | Uint8Array): void {
  const s = socket as SocketInternals;
  const handle = s._handle;
  if (
    binding === null ||
    handle === null ||
    handle === undefined ||
    typeof handle.writeLatin1String !== 'function' ||
    s.encrypted === true ||
    s.connecting ||
    s.writableLength !== 0 ||
    s.writableCorked !== 0 ||
    s.writableEnded ||
    (inFlight !== 0 && handle.writeQueueSize !== 0)
  ) {
    if (typeof data === 'string') socket.write(data, 'latin1');
    else socket.write(data);
    return;
  }
  const req = spare ?? (spare = newRequest());
  req.handle = handle as StreamHandle;
  const err = typeof data === 'string' ? handle.writeLatin1String(req, data) : handle.writeBuffer!(req, data);
  if (err !== 0) {
    req.handle = null;
    socket.destroy(errnoError(err, 'write'));
    return;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] !== 0) {
    // libuv holds the request until the bytes are out: it keeps them alive and reports a failure.
    req.socket = socket;
    if (typeof data !== 'string') req.buffer = data;
    spare = null;
    inFlight++;
  } else {
    req.handle = null;
  }
}

/** Bytes of direct writes to `socket` the kernel has not taken yet (Node's `writableLength` does not count them). */
export function unsentDirectBytes(socket: Socket): number {
  if (inFlight === 0) return 0;
  const handle = (socket as SocketInternals)._handle;
  return handle === null || handle === undefined ? 0 : (handle.writeQueueSize ?? 0);
}
