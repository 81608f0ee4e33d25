/**
 * Node's `stream_wrap` binding, for the two places fulcrum talks to socket
 * handles itself (direct-write.ts, shared-read-buffer.ts): the WriteWrap
 * request class and the state array through which a handle reports how many
 * bytes a read or write moved. Node keeps it reachable through
 * `process.binding('stream_wrap')` for compatibility; null when a Node
 * release drops it or changes its shape, and both callers then fall back to
 * Node's own stream paths.
 */
export interface StreamWrapBinding {
  WriteWrap: new () => object;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

export const streamWrap: StreamWrapBinding | null = load();

function load(): StreamWrapBinding | null {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array)) return null;
    if (typeof b.kLastWriteWasAsync !== 'number' || typeof b.kReadBytesOrError !== 'number') return null;
    return b as StreamWrapBinding;
  } catch {
    return null;
  }
}
