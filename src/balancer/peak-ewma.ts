/**
 * Peak-EWMA latency (Finagle, Linkerd, Envoy's least_request with active
 * request bias): a sample above the average replaces it at once, so a server
 * that slows down is avoided immediately; a faster sample is blended in with
 * a weight that grows with the time since the previous one (decay time
 * DECAY_MS: a sample taken a second or more after the previous one counts
 * for most of the new value), so a server that recovered is believed after
 * a few samples.
 *
 * The cost of sending a request to a server is its latency times the
 * requests already waiting there (from every worker), over its weight: the
 * expected wait, so a fast but busy server and a slow idle one compare
 * sensibly. A server with no sample yet costs 0: it is tried first and
 * measured.
 */
import type { ServerState } from '../upstream/server-state.js';
import { loadOf } from './policy.js';

export const DECAY_MS = 1_000;

/** A server not measured for this long is due for an exploring request (least_time). */
export const STALE_MS = 1_000;

export function observeLatency(server: ServerState, ms: number, now: number): void {
  const prev = server.peakEwmaMs;
  if (prev === 0 || ms >= prev) {
    server.peakEwmaMs = ms;
  } else {
    const w = Math.exp(-(now - server.peakEwmaAt) / DECAY_MS);
    server.peakEwmaMs = prev * w + ms * (1 - w);
  }
  server.peakEwmaAt = now;
}

export function timeCost(server: ServerState, weight: number): number {
  return (server.peakEwmaMs * (loadOf(server) + 1)) / weight;
}
