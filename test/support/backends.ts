/**
 * Backends for integration tests: real demo-backend processes (the compiled
 * dist/src/demo/backend.js, spawned through the demo's replica supervisor) and
 * raw-socket servers a test scripts byte by byte.
 */
import net from 'node:net';
import { startReplicas, type Replicas } from '../../src/demo/replicas.js';
import { listenOn, OpenSockets } from './ports.js';

export interface SpawnBackendsOptions {
  host?: string;
  /** Default `backend_`: names are backend_1 .. backend_n. */
  namePrefix?: string;
  /** Fixed ports basePort .. basePort+n-1; default ephemeral. */
  basePort?: number;
  keepAliveTimeoutMs?: number;
  /** Default false: a killed backend stays down until `restart(i)`, so tests control failures. */
  autoRestart?: boolean;
}

/** Test backends: `ports`, `names`, `pid(i)`, `kill(i, signal = 'SIGKILL')`, `restart(i)`, `stop()`. */
export type TestBackends = Replicas;

/** Starts `n` backend processes and resolves once all listen. Always `stop()` them (e.g. in `after`). */
export function spawnBackends(n: number, opts: SpawnBackendsOptions = {}): Promise<TestBackends> {
  return startReplicas({ ...opts, count: n, autoRestart: opts.autoRestart ?? false });
}

/** The values of header `name` (any case) in the `[name, value]` pairs that `/whoami` and `/echo` report. */
export function headerValues(pairs: ReadonlyArray<readonly [string, string]>, name: string): string[] {
  const wanted = name.toLowerCase();
  return pairs.filter(([key]) => key.toLowerCase() === wanted).map(([, value]) => value);
}

export interface ScriptedServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** What the handler threw or rejected with (e.g. an assertion), so a test can check it is empty. */
  readonly errors: unknown[];
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/**
 * A TCP server whose every connection is handed to `handler`, for backends
 * that misbehave on purpose (invalid framing, closing mid-response, ...).
 * Socket errors are swallowed, since the peer resetting is usually the point;
 * a handler that fails has its connection destroyed and its error kept in `errors`.
 */
export async function startScriptedServer(
  handler: (socket: net.Socket) => void | Promise<void>,
  host = '127.0.0.1',
): Promise<ScriptedServer> {
  const openSockets = new OpenSockets();
  const errors: unknown[] = [];
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    openSockets.add(socket);
    Promise.resolve()
      .then(() => handler(socket))
      .catch((err: unknown) => {
        errors.push(err);
        socket.destroy();
      });
  });
  const port = await listenOn(server, 0, host);
  return {
    port,
    get connections() { return accepted; },
    errors,
    close: () => openSockets.closeServer(server),
  };
}

const HEAD_END = '\r\n\r\n';

/**
 * For scripted servers: resolves with the next request head (request line and
 * headers, without the blank line) read from `socket`. Bytes after the head
 * are pushed back into the socket, which is left paused: call it again for a
 * pipelined request, or `socket.resume()` to read a body with 'data' events.
 */
export function readRequestHead(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(HEAD_END);
      if (end < 0) return;
      stopReading();
      const rest = buffered.subarray(end + HEAD_END.length);
      if (rest.length > 0) socket.unshift(rest);
      resolve(buffered.subarray(0, end).toString('latin1'));
    };
    const onEnd = () => {
      stopReading();
      reject(new Error('connection ended before a complete request head'));
    };
    const stopReading = () => {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume();
  });
}
