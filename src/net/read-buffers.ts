/**
 * Read buffers of a connection's own, for streamed bodies relayed without
 * copies (an upstream response body to the client, a request body to the
 * upstream).
 *
 * While a body streams through a connection, its reads land in a 64 KiB
 * buffer of that connection's own (Node asks for the next read buffer after
 * every read: `onread.buffer` as a function), and each chunk is written on
 * from that buffer. When the other socket takes the chunk at once (the usual
 * case) the same buffer takes the next read; when the write has to wait, the
 * buffer stays with the write (the GC frees it afterwards) and the connection
 * reads into a fresh one. Buffers that are free again are kept for reuse, up
 * to a bound, so a steady stream of large bodies allocates nothing.
 */
export const READ_BUFFER_SIZE = 65536;

const MAX_FREE = 64;
const free: Buffer[] = [];

/** A buffer for one connection's reads: from the free list, or new. */
function takeReadBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
}

/**
 * Gives back a buffer no read can land in any more and no write points at
 * (the connection went back to a shared buffer within a read callback, or
 * its socket is closed).
 */
function giveBackReadBuffer(buffer: Buffer): void {
  if (free.length < MAX_FREE) free.push(buffer);
}

/**
 * Where one connection's next read lands: its shared buffer, or a buffer of
 * its own while a body streams through it. Node asks (`next()`) after every
 * read callback, so a switch made inside a callback applies to the next read.
 */
export class ReadBufferChoice {
  private own: Buffer | null = null;

  constructor(private readonly shared: Buffer) {}

  next(): Buffer {
    return this.own ?? this.shared;
  }

  /** A body starts streaming: reads land in a buffer of the connection's own. */
  useOwn(): void {
    if (this.own === null) this.own = takeReadBuffer();
  }

  /** The bytes just lent from the own buffer are still held by a write: the next read lands in another. */
  keep(): void {
    if (this.own !== null) this.own = takeReadBuffer();
  }

  /**
   * The body is done: back to the shared buffer. `reusable`: no read can land
   * in the own buffer any more (called from within a read callback, or the
   * socket is closed), so it goes back to the free list; otherwise the GC has it.
   */
  useShared(reusable: boolean): void {
    const own = this.own;
    if (own === null) return;
    this.own = null;
    if (reusable) giveBackReadBuffer(own);
  }
}
