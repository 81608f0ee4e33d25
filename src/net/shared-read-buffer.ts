/**
 * Reads of accepted client sockets into one shared buffer.
 *
 * Node lets a socket read into a caller's buffer (`net.connect({ onread })`,
 * used for upstream connections), but only for sockets it creates itself: an
 * accepted socket always gets a fresh 64 KiB allocation per read, shrunk to
 * the bytes read, wrapped in a Buffer and pushed through the stream layer to
 * a 'data' listener. On the proxy's hot path that is ~1.5-2 µs per request
 * (docs/benchmarks.md). Node keeps `onread` in three symbol-keyed properties
 * of the socket and switches the handle with `useUserBuffer()`; this module
 * finds those symbols by their descriptions on a probe socket built with the
 * public `onread` option, and applies the same setting to an accepted socket.
 * Anything unexpected (a Node release that changed this) makes
 * `readIntoSharedBuffer` return false, and the caller uses 'data' events as
 * before; test/unit/shared-read-buffer.test.ts says which path is in use.
 *
 * A TLS socket's handle (Node's TLSWrap) hands its decrypted bytes to the
 * same kind of listener, so it is switched the same way once its handshake is
 * done (~2 µs of 23 per proxied HTTPS request; docs/benchmarks.md). One rule
 * comes with it: an empty write to a TLS socket makes Node decrypt and deliver
 * pending input at once (TLSWrap::DoWrite calls ClearOut), which would land in
 * the shared buffer while a read callback may still be using it, so client
 * sockets are never written empty.
 *
 * The callback gets bytes that the next read of any client socket
 * overwrites: whatever it keeps past the call, it must copy.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { streamWrap } from './stream-binding.js';

/** Returns false to stop reading (backpressure), as Node's `onread.callback`. */
export type SharedReadCallback = (bytes: number, buffer: Buffer) => boolean;

interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol | undefined;
}

interface HandleWithUserBuffer {
  useUserBuffer(buffer: Uint8Array): void;
}

/** What a stream handle calls per read: `onread`, with the byte count in the binding's state array. */
interface ReadingHandle {
  onread: ((this: unknown, arrayBuffer: unknown) => unknown) | undefined;
  reading: boolean;
  readStop(): number;
}

const sharedBuffer = Buffer.allocUnsafe(65536);

const symbols: OnreadSymbols | null = findOnreadSymbols();

function findOnreadSymbols(): OnreadSymbols | null {
  try {
    const marker = Buffer.alloc(1);
    const callback = (): boolean => true;
    // `onread` is read by the Socket constructor too, though @types/node lists it only for connect().
    const probe = new Socket({ onread: { buffer: marker, callback } } as SocketConstructorOpts);
    const own = Object.getOwnPropertySymbols(probe);
    const byName = (name: string): symbol | undefined => own.find((s) => s.description === name);
    const found = { buffer: byName('kBuffer'), callback: byName('kBufferCb'), generator: byName('kBufferGen') };
    const fields = probe as unknown as Record<symbol, unknown>;
    probe.destroy();
    if (found.buffer === undefined || found.callback === undefined) return null;
    if (fields[found.buffer] !== marker || fields[found.callback] !== callback) return null;
    return { buffer: found.buffer, callback: found.callback, generator: found.generator };
  } catch {
    return null;
  }
}

/** Whether this Node lets fulcrum give accepted sockets the shared read buffer. */
export const sharedReadsAvailable = symbols !== null;

/**
 * Makes `socket` (accepted: plain TCP in the tick it was accepted, TLS once
 * its handshake is done) read into the shared buffer and call `callback`
 * instead of emitting 'data'. 'end', 'close', pause() and resume() work as
 * before. False: not possible here; nothing was changed.
 */
export function readIntoSharedBuffer(socket: Socket, callback: SharedReadCallback): boolean {
  if (symbols === null) return false;
  const handle = (socket as unknown as { _handle?: Partial<HandleWithUserBuffer> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  fields[symbols.buffer] = sharedBuffer;
  fields[symbols.callback] = callback;
  if (symbols.generator !== undefined) fields[symbols.generator] = null;
  handle.useUserBuffer(sharedBuffer);
  hookReads(socket, sharedBuffer, callback, null);
  return true;
}

/** What a read hook needs of the socket it serves: net.Socket, or a TcpStream (tcp-stream.ts). */
interface HookedSocket {
  readonly destroyed: boolean;
  destroy(err?: Error): unknown;
}

/**
 * A socket's reads, with fulcrum's `onread` in place of Node's.
 *
 * With a user buffer Node still runs `onStreamRead` per read: it refreshes
 * the socket's timer, loads the buffer, callback and generator from three
 * symbol-keyed properties of the socket (megamorphic loads), calls the
 * callback, then the generator. The handle calls whatever function its
 * `onread` holds, with the handle as `this`, so fulcrum puts there one
 * function shared by all sockets, which finds the socket's ReadHook on the
 * handle and does the same for reads that brought bytes; everything else
 * (end of stream, errors) goes to Node's function. ~1 % of the proxy's CPU
 * (docs/benchmarks.md), and no per-socket closure (idle connections are
 * counted in bytes). fulcrum sets no socket timeouts (its sweep checks every
 * deadline), so the timer refresh it skips is a no-op.
 */
class ReadHook {
  constructor(
    readonly socket: HookedSocket,
    public buffer: Uint8Array,
    readonly callback: SharedReadCallback,
    public choose: (() => Uint8Array) | null,
    readonly nodeOnread: (this: unknown, arrayBuffer: unknown) => unknown,
  ) {}
}

interface HookedHandle extends ReadingHandle {
  fulcrumReads: ReadHook;
}

/** A stream handle fulcrum's `onread` can be put on. */
export interface HookableHandle {
  onread: ((this: never, arrayBuffer: unknown) => unknown) | undefined;
  readStop(): number;
}

const readCounts = streamWrap?.streamBaseState;
const readCountSlot = streamWrap?.kReadBytesOrError ?? 0;

function onread(this: HookedHandle, arrayBuffer: unknown): unknown {
  const hook = this.fulcrumReads;
  const nread = readCounts![readCountSlot]!;
  const socket = hook.socket;
  if (nread <= 0 || socket.destroyed) return hook.nodeOnread.call(this, arrayBuffer);
  const more = hook.callback(nread, hook.buffer as Buffer);
  let next: Uint8Array | undefined;
  if (hook.choose !== null) hook.buffer = next = hook.choose(); // the handle reads into what this returns
  if (more === false) {
    this.reading = false;
    const err = this.readStop();
    if (err !== 0 && !socket.destroyed) socket.destroy(new Error(`readStop failed (libuv error ${err})`));
  }
  return next;
}

function hookReads(socket: Socket, buffer: Uint8Array, callback: SharedReadCallback, choose: (() => Uint8Array) | null): void {
  if (readCounts === undefined) return;
  const handle = (socket as unknown as { _handle?: Partial<HookedHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.onread !== 'function' || typeof handle.readStop !== 'function') return;
  installHook(handle as HookedHandle, socket, buffer, callback, choose, handle.onread);
}

/** Puts fulcrum's `onread` on `handle`; `nodeOnread` gets the reads that bring no bytes. */
function installHook(
  handle: HookedHandle,
  socket: HookedSocket,
  buffer: Uint8Array,
  callback: SharedReadCallback,
  choose: (() => Uint8Array) | null,
  nodeOnread: (this: unknown, arrayBuffer: unknown) => unknown,
): void {
  handle.fulcrumReads = new ReadHook(socket, buffer, callback, choose, nodeOnread);
  handle.onread = onread as HookedHandle['onread'];
}

/**
 * For a bare handle (tcp-stream.ts) that reads into `buffer` (already given
 * with useUserBuffer): fulcrum's `onread`, with `onEnd` called (the handle as
 * `this`) for reads that bring no bytes, end of stream and errors, whose
 * code is in the stream binding's state array. `choose` (null: keep reading
 * into `buffer`) gives the buffer for each next read.
 */
export function hookHandleReads(
  handle: HookableHandle,
  socket: HookedSocket,
  buffer: Uint8Array,
  callback: SharedReadCallback,
  choose: (() => Uint8Array) | null,
  onEnd: (this: never) => void,
): void {
  installHook(handle as unknown as HookedHandle, socket, buffer, callback, choose, onEnd as unknown as (this: unknown, arrayBuffer: unknown) => unknown);
}

/** For a handle hooked by hookHandleReads: `choose` gives the buffer for each next read from now on. */
export function chooseHandleReadBuffers(handle: HookableHandle, choose: () => Uint8Array): void {
  const hook = (handle as unknown as Partial<HookedHandle>).fulcrumReads;
  if (hook !== undefined) hook.choose = choose;
}

/**
 * For a socket connected with Node's `onread` option (upstream connections):
 * the same `onread` as accepted sockets get, reading into the buffers
 * `choose` gives. Nothing changes where that is not possible.
 */
export function hookOwnReads(socket: Socket, callback: SharedReadCallback, choose: () => Uint8Array): void {
  if (symbols === null) return;
  const current = (socket as unknown as Record<symbol, unknown>)[symbols.buffer];
  if (current instanceof Uint8Array) hookReads(socket, current, callback, choose);
}

/**
 * Lets `choose` pick where each next read of `socket` (already reading into
 * the shared buffer) lands: Node asks after every read callback, as with
 * `onread.buffer` given as a function. False: not possible on this Node.
 */
export function chooseReadBuffers(socket: Socket, choose: () => Buffer): boolean {
  if (symbols === null || symbols.generator === undefined) return false;
  (socket as unknown as Record<symbol, unknown>)[symbols.generator] = choose;
  const hook = (socket as unknown as { _handle?: Partial<HookedHandle> | null })._handle?.fulcrumReads;
  if (hook !== undefined) hook.choose = choose;
  return true;
}

/** The buffer accepted sockets read into unless a chooser says otherwise. */
export const sharedClientReadBuffer: Buffer = sharedBuffer;

/** Whether `buffer` is a view of the shared read buffer (and must be copied to be kept). */
export function isSharedReadBuffer(buffer: Buffer): boolean {
  return buffer.buffer === sharedBuffer.buffer;
}
