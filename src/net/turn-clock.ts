/**
 * The clock of the current event-loop turn: read once per turn, like nginx's
 * cached time (updated once per event-loop iteration, not per request).
 *
 * A proxied request reads the clock ~9 times (start, pick, send, each read,
 * head, completion, idle); at 50,000 requests/s that is ~2 % of fulcrum's CPU
 * (performance.now() is a C++ call and a clock_gettime). Within one turn all
 * those readings were within a fraction of a millisecond of each other
 * anyway.
 *
 * Staleness is bounded by one turn: a reading is cached together with a
 * setImmediate that clears it, and while an immediate is pending Node does not
 * block in the poll phase, so the cache never survives a wait for I/O.
 */
let monotonic = 0;
let epoch = 0;
let cached = false;

function clear(): void {
  cached = false;
}

function read(): void {
  monotonic = performance.now();
  epoch = Date.now();
  cached = true;
  setImmediate(clear);
}

/** performance.now() as of this turn (ms). */
export function turnNow(): number {
  if (!cached) read();
  return monotonic;
}

/** Date.now() as of this turn (ms since the epoch). */
export function turnEpochMs(): number {
  if (!cached) read();
  return epoch;
}
