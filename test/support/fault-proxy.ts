/**
 * A small TCP fault proxy to put between fulcrum and a backend (toxiproxy is
 * not packaged here). Connections are forwarded to the target; the current
 * mode decides what happens to them:
 *
 * - `'pass'`: forward untouched.
 * - `{ latency: ms }`: wait `ms` before forwarding each chunk, in both directions.
 * - `{ slice: bytes, delayMs? }`: forward every chunk in pieces of at most
 *   `bytes`, with a pause between pieces (default: one event-loop turn), so a
 *   parser sees headers and bodies split at awkward places.
 * - `'reset'`: answer new connections, and any data on open ones, with a TCP
 *   reset (RST): a backend host whose service died.
 * - `'stall'`: accept and read, never forward: a backend that hangs. New
 *   connections are not even connected to the target.
 * - `{ closeAfter: bytes }`: forward `bytes` of the response (target to
 *   client), then close the client side (FIN) and drop the target: a backend
 *   that dies mid-response.
 *
 * The mode is read when a connection is accepted and again for every chunk,
 * so `setMode` also affects connections already open (pooled keep-alive ones).
 * Resets and FINs are passed on, so half-closes and RSTs from either side
 * reach the other.
 */
import net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { listenOn, OpenSockets } from './ports.js';
import { sleep } from './wait.js';

export type FaultMode =
  | 'pass'
  | 'reset'
  | 'stall'
  | { latency: number }
  | { slice: number; delayMs?: number }
  | { closeAfter: number };

export interface FaultProxyOptions {
  targetPort: number;
  /** Default 127.0.0.1. */
  targetHost?: string;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** Default `'pass'`. */
  mode?: FaultMode;
}

export interface FaultProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  readonly mode: FaultMode;
  setMode(mode: FaultMode): void;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

type Direction = 'request' | 'response';

/** One proxied connection: the client that connected here and the socket to the target. */
interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Response bytes forwarded so far, for `closeAfter`. */
  responseBytes: number;
  /** Set when the proxy closed the link on purpose (`closeAfter`): the pumps then stop quietly, without resets. */
  cut: boolean;
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  let mode: FaultMode = opts.mode ?? 'pass';
  let accepted = 0;
  // Socket errors are part of the job here: the pumps react to them.
  const openSockets = new OpenSockets();

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    openSockets.add(client);
    if (mode === 'reset') return resetSocket(client);
    if (mode === 'stall') return void client.resume();
    const upstream = net.connect({ host: opts.targetHost ?? '127.0.0.1', port: opts.targetPort, allowHalfOpen: true });
    openSockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const link: Link = { client, upstream, responseBytes: 0, cut: false };
    void pump(client, upstream, 'request', link, () => mode);
    void pump(upstream, client, 'response', link, () => mode);
  });

  const port = await listenOn(server, 0, opts.host ?? '127.0.0.1');
  return {
    port,
    get connections() { return accepted; },
    get mode() { return mode; },
    setMode: (next) => { mode = next; },
    close: () => openSockets.closeServer(server),
  };
}

/** Copies `from` into `to` chunk by chunk, applying the mode current at each chunk. */
async function pump(from: net.Socket, to: net.Socket, direction: Direction, link: Link, currentMode: () => FaultMode): Promise<void> {
  try {
    for await (const chunk of from as AsyncIterable<Buffer>) {
      // After a cut, keep draining (leaving the loop would destroy `from`) until the peer closes.
      if (!link.cut) await forward(chunk, to, direction, link, currentMode());
    }
    if (!link.cut && !to.destroyed) to.end(); // pass the FIN on
  } catch {
    // `from` was reset or failed: the other side sees a reset too.
    if (!link.cut) resetSocket(to);
  }
}

async function forward(chunk: Buffer, to: net.Socket, direction: Direction, link: Link, mode: FaultMode): Promise<void> {
  if (mode === 'pass') return write(to, chunk);
  if (mode === 'stall') return; // dropped: the peer waits for ever
  if (mode === 'reset') {
    resetSocket(link.client);
    resetSocket(link.upstream);
    return;
  }
  if ('latency' in mode) {
    await sleep(mode.latency);
    return write(to, chunk);
  }
  if ('slice' in mode) return writeInSlices(to, chunk, mode.slice, mode.delayMs);
  if (direction === 'request') return write(to, chunk);
  return forwardUntilLimit(chunk, link, mode.closeAfter);
}

async function writeInSlices(to: net.Socket, chunk: Buffer, sliceBytes: number, delayMs: number | undefined): Promise<void> {
  const size = Math.max(1, sliceBytes);
  for (let offset = 0; offset < chunk.length && !to.destroyed; offset += size) {
    await write(to, chunk.subarray(offset, offset + size));
    await (delayMs ? sleep(delayMs) : nextTurn());
  }
}

/** `closeAfter`: forwards response bytes up to the limit, then closes the client side and drops the target. */
async function forwardUntilLimit(chunk: Buffer, link: Link, limit: number): Promise<void> {
  const room = Math.max(0, limit - link.responseBytes);
  const allowed = chunk.subarray(0, room);
  link.responseBytes += allowed.length;
  if (allowed.length > 0) await write(link.client, allowed);
  if (link.responseBytes >= limit) {
    link.cut = true;
    link.client.end();
    link.upstream.destroy();
  }
}

/** Resolves once `data` is handed to the kernel (or the socket is gone): this is the backpressure. */
function write(socket: net.Socket, data: Buffer): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.write(data, () => resolve()));
}

/** Sends a TCP RST instead of a FIN. */
function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not connected yet: there is nothing to reset
  }
}
