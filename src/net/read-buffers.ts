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
export function takeReadBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
}

/**
 * Gives back a buffer no read can land in any more and no write points at
 * (the connection went back to a shared buffer within a read callback, or
 * its socket is closed).
 */
export function giveBackReadBuffer(buffer: Buffer): void {
  if (free.length < MAX_FREE) free.push(buffer);
}
