/**
 * Client connection counts of this process, as nginx's stub_status reports
 * them (and its $connections_* variables). The connections move between
 * phases with one array decrement and one increment, so keeping them costs
 * the hot path nothing measurable.
 *
 * nginx's meaning, which monitoring tools rely on:
 * - accepts: connections accepted; handled: those not refused at once
 *   (worker_connections reached); requests: request heads begun (nginx counts
 *   a request when its first byte arrives, bad ones included).
 * - reading: reading a request head; writing: a request in progress (its body,
 *   the upstream, the response, a WebSocket); waiting: open and idle (a new
 *   connection before its first byte, keep-alive between requests).
 * - active: every open client connection, closing ones included (those are in
 *   none of the three phases, as in nginx's lingering close).
 */

/** A connection's phase; Gone counts nowhere (closing or closed). */
export const enum ConnectionPhase {
  Gone = 0,
  Reading = 1,
  Writing = 2,
  Waiting = 3,
}

export const connectionCounts = {
  accepted: 0,
  handled: 0,
  requests: 0,
  active: 0,
  /** Connections (HTTP/2: streams) per ConnectionPhase; index Gone is unused. */
  phases: new Float64Array(4),
};

/** Moves one connection (or HTTP/2 stream) from one phase to another. */
export function movePhase(from: ConnectionPhase, to: ConnectionPhase): void {
  const phases = connectionCounts.phases;
  phases[from]!--;
  phases[to]!++;
}

/** nginx's stub_status page, byte for byte (its trailing spaces included). */
export function stubStatusText(): string {
  const c = connectionCounts;
  return (
    `Active connections: ${c.active} \n` +
    'server accepts handled requests\n' +
    ` ${c.accepted} ${c.handled} ${c.requests} \n` +
    `Reading: ${c.phases[ConnectionPhase.Reading]} Writing: ${c.phases[ConnectionPhase.Writing]} Waiting: ${c.phases[ConnectionPhase.Waiting]} \n`
  );
}
