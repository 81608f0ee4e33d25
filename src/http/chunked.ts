/**
 * Incremental, strict decoder for the chunked transfer coding (RFC 9112 7.1).
 *
 * It never copies data: execute() consumes framing bytes and stops after
 * each run of chunk data, exposing it as [spanStart, spanEnd) of the buffer
 * it was given, so the caller can forward a subarray. Trailer fields are
 * validated and dropped (fulcrum does not forward trailers, like nginx).
 */
import { FIELD_VALUE, TOKEN } from './syntax.js';

const enum State {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLine,
  TrailerLf,
  Done,
  Error,
}

/** chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), without the whitespace llhttp also refuses. */
const CHUNK_EXTENSIONS = /^(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;

const MAX_SIZE_DIGITS = 13; // 16^13 > 2^52: beyond any real chunk, and no float overflow
const MAX_EXTENSION_BYTES = 4096;
const MAX_TRAILER_BYTES = 16384;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lc = c | 0x20;
  if (lc >= 0x61 && lc <= 0x66) return lc - 0x61 + 10;
  return -1;
}

export class ChunkedDecoder {
  private state = State.Size;
  private sizeDigits = 0;
  private remaining = 0;
  private text = '';
  private trailerBytes = 0;
  /** Start and end of the chunk data found by the last execute() call; equal when none. */
  spanStart = 0;
  spanEnd = 0;
  /** Sum of the chunk sizes declared so far (known at each size line, before the data arrives). */
  declaredTotal = 0;
  error = '';

  reset(): void {
    this.state = State.Size;
    this.sizeDigits = 0;
    this.remaining = 0;
    this.text = '';
    this.trailerBytes = 0;
    this.spanStart = 0;
    this.spanEnd = 0;
    this.declaredTotal = 0;
    this.error = '';
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  get failed(): boolean {
    return this.state === State.Error;
  }

  /**
   * Consumes bytes of `buf` from `offset` up to `end`. Stops early right after a run of chunk
   * data (exposed in spanStart/spanEnd), at the end of the message, or at an
   * error. Returns the index of the first byte not consumed.
   */
  execute(buf: Buffer, offset: number, end: number = buf.length): number {
    this.spanStart = this.spanEnd = offset;
    let i = offset;
    while (i < end) {
      switch (this.state) {
        case State.Size: {
          const c = buf[i]!;
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.sizeDigits > MAX_SIZE_DIGITS) return this.fail(i, 'chunk size too large');
            this.remaining = this.remaining * 16 + h;
            i++;
          } else if (this.sizeDigits === 0) {
            return this.fail(i, 'invalid chunk size');
          } else if (c === 0x0d) {
            this.state = State.SizeLf;
            i++;
          } else if (c === 0x3b /* ; */) {
            this.state = State.Extension;
            this.text = '';
          } else {
            return this.fail(i, 'invalid chunk size');
          }
          break;
        }
        case State.Extension: {
          const cr = buf.indexOf(0x0d, i);
          const stop = cr < 0 || cr >= end ? end : cr;
          this.text += buf.toString('latin1', i, stop);
          if (this.text.length > MAX_EXTENSION_BYTES) return this.fail(i, 'chunk extension too long');
          i = stop;
          if (stop < end) {
            if (!CHUNK_EXTENSIONS.test(this.text)) return this.fail(i, 'invalid chunk extension');
            this.text = '';
            this.state = State.SizeLf;
            i++;
          }
          break;
        }
        case State.SizeLf:
          if (buf[i] !== 0x0a) return this.fail(i, 'expected LF after chunk size');
          i++;
          this.sizeDigits = 0;
          this.declaredTotal += this.remaining;
          if (this.remaining === 0) {
            this.state = State.TrailerLine;
            this.text = '';
          } else {
            this.state = State.Data;
          }
          break;
        case State.Data: {
          const take = Math.min(this.remaining, end - i);
          this.spanStart = i;
          this.spanEnd = i + take;
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = State.DataCr;
          return i;
        }
        case State.DataCr:
          if (buf[i] !== 0x0d) return this.fail(i, 'expected CRLF after chunk data');
          this.state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (buf[i] !== 0x0a) return this.fail(i, 'expected CRLF after chunk data');
          this.state = State.Size;
          i++;
          break;
        case State.TrailerLine: {
          const cr = buf.indexOf(0x0d, i);
          const stop = cr < 0 || cr >= end ? end : cr;
          this.trailerBytes += stop - i;
          if (this.trailerBytes > MAX_TRAILER_BYTES) return this.fail(i, 'trailer section too large');
          this.text += buf.toString('latin1', i, stop);
          i = stop;
          if (stop < end) {
            this.state = State.TrailerLf;
            i++;
          }
          break;
        }
        case State.TrailerLf: {
          if (buf[i] !== 0x0a) return this.fail(i, 'expected LF in trailer section');
          i++;
          const line = this.text;
          this.text = '';
          if (line === '') {
            this.state = State.Done;
            return i;
          }
          if (!validTrailerLine(line)) return this.fail(i, 'invalid trailer field');
          this.state = State.TrailerLine;
          break;
        }
        case State.Done:
        case State.Error:
          return i;
      }
    }
    return i;
  }

  private fail(at: number, reason: string): number {
    this.state = State.Error;
    this.error = reason;
    return at;
  }
}

/**
 * Fields that may never come in a trailer section (RFC 9110 6.5.1): framing
 * and connection management. llhttp answers 400 for Content-Length and
 * Transfer-Encoding trailers and applies a `Connection: close` trailer to the
 * connection; fulcrum drops trailers, so it refuses all three rather than
 * disagree with a backend about the message or the connection.
 */
const FORBIDDEN_TRAILERS = new Set(['content-length', 'transfer-encoding', 'connection']);

function validTrailerLine(line: string): boolean {
  const colon = line.indexOf(':');
  if (colon <= 0) return false;
  const name = line.slice(0, colon);
  if (!TOKEN.test(name) || FORBIDDEN_TRAILERS.has(name.toLowerCase())) return false;
  const value = line.slice(colon + 1);
  return FIELD_VALUE.test(value) && !/[\r\n\0]/.test(value);
}

/** Encodes one chunk's framing around `length` bytes of data: returns the size line. */
export function chunkHeader(length: number): string {
  return length.toString(16) + '\r\n';
}

export const LAST_CHUNK = '0\r\n\r\n';
