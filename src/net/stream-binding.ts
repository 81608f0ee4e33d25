/**
 * Node's `stream_wrap` binding, for the places fulcrum talks to socket
 * handles itself (direct-write.ts, shared-read-buffer.ts, tcp-stream.ts):
 * the WriteWrap request class and the state array through which a handle
 * reports how many bytes a read or write moved. Node keeps it reachable
 * through `process.binding('stream_wrap')` for compatibility; null when a
 * Node release drops it or changes its shape, and the callers then fall back
 * to Node's own stream paths.
 */
import { getSystemErrorName } from 'node:util';

export interface StreamWrapBinding {
  WriteWrap: new () => object;
  /** Only bare TCP streams need it (tcp-stream.ts checks for it); direct writes do not. */
  ShutdownWrap?: new () => object;
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

/** A libuv status code as the Error Node would make of it ("connect ECONNREFUSED 127.0.0.1:80", `code`, `errno`, `syscall`). */
export function errnoError(status: number, syscall: string, address?: string, port?: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  const where = address !== undefined ? ` ${address}:${port}` : '';
  const err = new Error(`${syscall} ${code}${where}`) as NodeJS.ErrnoException & { address?: string; port?: number };
  err.errno = status;
  err.code = code;
  err.syscall = syscall;
  if (address !== undefined) {
    err.address = address;
    err.port = port;
  }
  return err;
}
