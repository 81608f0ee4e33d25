/**
 * The client side of an exchange, as the proxy sees it. HTTP/1.1 connections
 * (src/listeners/http1-connection.ts) and HTTP/2 streams
 * (src/listeners/http2-session.ts) implement it; the Exchange does not know
 * which wire it is talking to.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * Response header fields. Relayed upstream headers travel as `raw`: their
 * lines exactly as the upstream wrote them ("Name: value\r\n" each), cut from
 * the upstream head without building a string per field; fields fulcrum adds
 * itself are in names/values. HTTP/1.1 writes `raw` as is; HTTP/2 splits it.
 */
export class HeaderList {
  raw = '';
  names: string[] = [];
  values: string[] = [];

  reset(): this {
    this.raw = '';
    // Fresh arrays are cheaper in V8 than truncating old ones (`length = 0`),
    // and most proxied responses add no field, so none is needed then.
    if (this.names.length !== 0) {
      this.names = [];
      this.values = [];
    }
    return this;
  }

  add(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
  }

  /** Every field, raw ones first, as (name, value) pairs. */
  forEach(fn: (name: string, value: string) => void): void {
    if (this.raw !== '') {
      for (const line of this.raw.split('\r\n')) {
        if (line === '') continue;
        const colon = line.indexOf(':');
        fn(line.slice(0, colon), line.slice(colon + 1).trim());
      }
    }
    for (let i = 0; i < this.names.length; i++) fn(this.names[i]!, this.values[i]!);
  }

  /** First value by lowercase name. */
  get(lowerName: string): string | undefined {
    let found: string | undefined;
    this.forEach((name, value) => {
      if (found === undefined && name.toLowerCase() === lowerName) found = value;
    });
    return found;
  }
}

export interface Downstream {
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly scheme: 'http' | 'https';
  /** The client's TLS connection (client certificate, $ssl_* variables); undefined on plain HTTP. */
  readonly tlsSocket: TLSSocket | undefined;
  readonly connectionId: number;
  /** Requests served on this connection, including the current one. */
  readonly requestCount: number;
  /** Whether the client can take a chunked response (HTTP/1.1); HTTP/2 frames bodies itself. */
  readonly canChunk: boolean;
  /** "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0", for logs. */
  readonly protocol: string;

  /** A reset header list to fill for the response. */
  responseHeaders(): HeaderList;
  /**
   * Sends the response head. `length` is the body length or -1 when unknown
   * (streamed). `body` may carry the first (or, with `end`, the whole) body.
   * Returns false when the client's write buffer is full: wait for
   * Exchange.downstreamDrain().
   *
   * Body buffers given to sendHead and sendBody are borrowed (they may live in
   * a shared read buffer): an implementation that keeps one past the call
   * copies it.
   */
  sendHead(status: number, reason: string, headers: HeaderList, length: number, noBody: boolean, body: Buffer | null, end: boolean): boolean;
  /** Sends body bytes; false means wait for downstreamDrain(). */
  sendBody(chunk: Buffer): boolean;
  /**
   * Sends body bytes without copying them: the caller lends the memory and
   * must not overwrite it while the result has BodyWrite.Kept (a write still
   * points at it; it is the GC's once written). BodyWrite.Blocked: wait for
   * downstreamDrain(), as a false from sendBody.
   */
  lendBody(chunk: Buffer): number;
  /**
   * Request body bytes this downstream handed over as `lendable` are still
   * held by a write to the upstream: its next read must land elsewhere.
   */
  keepReadBuffer(): void;
  /** The upstream has nothing pending: the read buffers kept for its writes (keepReadBuffer) are free again. */
  readBuffersWrittenOut(): void;
  /** Ends the response. */
  endBody(): void;
  /** Closes the connection (or resets the stream) at once: the client sees a truncated response. */
  abort(reason: string): void;
  /** Stops / restarts reading the request body (backpressure from the upstream). */
  pauseRequestBody(): void;
  resumeRequestBody(): void;
  /** Answers `Expect: 100-continue`. */
  sendContinue(): void;
  /**
   * Hands the client connection over to a tunnel after a 101 response:
   * returns the raw client socket (with any bytes already read but not yet
   * consumed), or undefined if this downstream cannot tunnel (HTTP/2).
   */
  takeOverSocket(): { socket: Socket; buffered: Buffer | null } | undefined;
  /** Open connections from this client's address (per-client limits). */
  connectionsFromClient(): number;
  /** Resolves when the client's write buffer drains (for handlers that stream at their own pace). */
  waitForDrain(): Promise<void>;
}

/** Bits of Downstream.lendBody's result. */
export const enum BodyWrite {
  /** The client's write buffer is full: wait for Exchange.downstreamDrain(). */
  Blocked = 1,
  /** A queued write still holds the lent bytes. */
  Kept = 2,
}
