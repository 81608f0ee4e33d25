/**
 * Writes held until the end of the current event-loop turn.
 *
 * Under load one turn of the loop handles many readable sockets (one
 * epoll_wait returns ~20-50 of them). Writing each request head and each small
 * response the moment it is ready means the peer (a backend, a client) is
 * woken once per write, often from idle, and on virtual machines every such
 * cross-CPU wakeup is an interrupt that costs microseconds. Holding the writes
 * of a turn and issuing them together right after the poll phase (Node runs
 * setImmediate callbacks there, before the loop can block again) costs one
 * setImmediate per turn, adds no latency beyond the turn's own work, and cut
 * fulcrum's CPU per proxied request by ~20 % (docs/benchmarks.md).
 *
 * The rule that keeps bytes in order: a socket written through
 * `writeAtEndOfTurn` is written (or ended, destroyed, piped) any other way only
 * after `flushTurnWrites()`. Call sites do that before every direct write.
 */
import type { Socket } from 'node:net';
import { writeDirect } from './direct-write.js';
import { TcpStream } from './tcp-stream.js';

/** What is queued for a socket: bytes to write, or something to do with it once what came before is written. */
type Queued = string | Buffer | ((socket: Socket | TcpStream) => void);

let sockets: (Socket | TcpStream)[] = [];
let chunks: Queued[] = [];
let scheduled = false;

/** Queues `data` (a string is sent as latin1) for `socket`, in order with other queued writes. */
export function writeAtEndOfTurn(socket: Socket | TcpStream, data: string | Buffer): void {
  queue(socket, data);
}

/**
 * Queues `action` for `socket`, to run after the writes queued before it: a
 * connection closed after its response ends (or is destroyed) in the same
 * batch as the response is written, instead of flushing the whole turn's
 * queue early (one wakeup of each peer per turn, as for the writes).
 */
export function actAtEndOfTurn<S extends Socket | TcpStream>(socket: S, action: (socket: S) => void): void {
  queue(socket, action as (socket: Socket | TcpStream) => void);
}

function queue(socket: Socket | TcpStream, item: Queued): void {
  sockets.push(socket);
  chunks.push(item);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushTurnWrites);
  }
}

/** Writes everything queued now. Cheap when nothing is queued. */
export function flushTurnWrites(): void {
  scheduled = false;
  if (sockets.length === 0) return;
  const toWrite = sockets;
  const data = chunks;
  sockets = [];
  chunks = [];
  for (let i = 0; i < toWrite.length; i++) {
    const socket = toWrite[i]!;
    if (socket.destroyed) continue; // what a destroyed socket had queued is dropped, as Node drops its own queue
    const chunk = data[i]!;
    if (typeof chunk === 'function') chunk(socket);
    else if (socket instanceof TcpStream) socket.write(chunk); // a bare handle: its writes are direct already
    else writeDirect(socket, chunk); // past Node's Writable when its queue is empty (direct-write.ts)
  }
}

/** Whether writes are waiting for the end of the turn (for tests and assertions). */
export function turnWritesPending(): boolean {
  return sockets.length !== 0;
}
