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
/** Lent buffers one connection remembers for the free list (keep()); older ones are left to the GC. */
const MAX_LENT = 16;
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

/** Gives back every buffer of `buffers` (no write points at any of them) and empties it. */
function giveBackAll(buffers: Buffer[]): void {
  if (buffers.length === 0) return;
  for (let i = 0; i < buffers.length; i++) giveBackReadBuffer(buffers[i]!);
  buffers.length = 0;
}

/**
 * Where one connection's next read lands: its shared buffer, or a buffer of
 * its own while a body streams through it. Node asks (`next()`) after every
 * read callback, so a switch made inside a callback applies to the next read.
 */
export class ReadBufferChoice {
  private own: Buffer | null = null;
  /** Own buffers still held by writes when the reads moved on (keep()): free again once those writes are done. */
  private lent: Buffer[] | null = null;

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
    const own = this.own;
    if (own === null) return;
    const lent = (this.lent ??= []);
    // A bound, whatever the caller does: the oldest goes to the GC instead of the free list.
    if (lent.length === MAX_LENT) lent.shift();
    lent.push(own);
    this.own = takeReadBuffer();
  }

  /**
   * The writer the own buffers were lent to has nothing pending any more (a
   * later write went out whole, or it drained): writes to one socket
   * complete in order, so no write points at a lent buffer, and they go back
   * to the free list. Without this each of them waited for the GC, which
   * finds them late: they outlive a few scavenges while their write is
   * pending, so only a full collection frees them, and RSS after a 1 MiB
   * response run went up and down by ~15 MiB with the dead buffers.
   */
  writesDone(): void {
    if (this.lent !== null) giveBackAll(this.lent);
  }

  /**
   * The body is done: back to the shared buffer. `reusable`: no read can land
   * in the own buffer any more (called from within a read callback, or the
   * socket is closed), so it goes back to the free list; otherwise the GC has it.
   */
  useShared(reusable: boolean): void {
    // Whether the writes of the lent buffers are done is not known from here on: they are the GC's.
    this.lent = null;
    const own = this.own;
    if (own === null) return;
    this.own = null;
    if (reusable) giveBackReadBuffer(own);
  }
}

/** Below this a copy comes from Node's slab pool (Buffer.from), which costs no ArrayBuffer of its own. */
const POOLED_COPY_MIN = 4096;

/**
 * Copies of borrowed bytes (the shared read buffer) that a connection
 * writes. Node allocates a fresh ArrayBuffer for each copy of 4 KiB or more,
 * and one that a slow write keeps outlives a few scavenges, so only a full
 * collection frees it: with 1 MiB responses, whose first read brings up to
 * 64 KiB of body with the head, ~15 MiB of dead copies came and went in RSS.
 * Large copies go into free read buffers instead, which come back to the
 * free list once the socket has nothing pending (writesDone(); writes to one
 * socket complete in order), or to the GC if the connection goes first.
 */
export class WriteCopies {
  private held: Buffer[] = [];

  /** A copy of `data` that stays unchanged until writesDone(). */
  copy(data: Buffer): Buffer {
    if (data.length < POOLED_COPY_MIN || data.length > READ_BUFFER_SIZE) return Buffer.from(data);
    const buffer = takeReadBuffer();
    data.copy(buffer, 0);
    this.held.push(buffer);
    return buffer.subarray(0, data.length);
  }

  /** The socket the copies were written to has nothing pending: no write points at them any more. */
  writesDone(): void {
    giveBackAll(this.held);
  }
}
