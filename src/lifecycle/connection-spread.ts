/**
 * Spreading client connections over the workers (worker_processes > 1).
 *
 * Every worker accepts on the same listening sockets, and libuv accepts all
 * the connections that are pending in one go, so a burst (a client opening
 * its keep-alive pool, wrk -c200, a load balancer in front reconnecting)
 * lands on whichever worker ran first, and its connections stay there for as
 * long as they live. Measured with 2 workers and wrk -c200: 184/16 and 198/2
 * in two of six bursts (and 40/0 or 39/1 in bursts of 40), so one core served
 * nearly everything while the other idled. nginx's workers take turns with
 * EPOLLEXCLUSIVE and one accept per wakeup; Node 20 offers neither, nor
 * SO_REUSEPORT (Node's round-robin cluster mode spreads evenly, but passes
 * every connection through the supervisor: half the new connections per
 * second with 2 workers, measured).
 *
 * So a worker that is ahead hands the connection it just accepted (before
 * reading a byte from it) to the sibling with the fewest, through the
 * supervisor, which sends the descriptor on. Only excess connections pay the
 * hop (two IPC messages, under a millisecond); a connection handed over once
 * is served where it lands.
 *
 * A worker knows its own count exactly; the others' come from reports every
 * ~100 ms, plus what it handed them since. It hands over when it holds more
 * than 1.5x the sibling's estimate plus SIBLING_COUNT_SLACK: bursts even out (40 split
 * 13/27 at worst, wrk's 200 between 75/125 and 102/98), and the small,
 * quickly changing counts of steady short-lived traffic stay where they are.
 */
import type { Worker } from 'node:cluster';
import type { FromWorker, ToWorker } from './messages.js';

/** Imbalance tolerated before handing over, in connections; a count that moved this much is reported at once. */
export const SIBLING_COUNT_SLACK = 8;

/**
 * How long connections handed to a sibling count in its estimate without a
 * report. A worker reports its count only when it changed at one of its
 * 100 ms ticks, so a burst that came and went between two ticks is never
 * reported: by then the sibling's last report is right again, and counting
 * those connections too made the next burst stay where it landed (34/6).
 */
const HANDED_STALE_MS = 250;

/** Worker side: estimates of the siblings' connection counts, and the decision to hand one over. */
export class SiblingConnections {
  /** worker id -> [reported connections, handed to it since that report]. */
  private readonly siblings = new Map<number, [reported: number, handed: number]>();
  /** When the first connection counted in `handed` was handed over (0: none counted). */
  private handedSince = 0;

  /** The supervisor's latest view of the other workers. */
  update(counts: readonly (readonly [id: number, connections: number])[]): void {
    this.siblings.clear();
    this.handedSince = 0;
    for (const [id, n] of counts) this.siblings.set(id, [n, 0]);
  }

  /**
   * The sibling to hand a new connection to when this worker already holds
   * `mine`, or undefined to keep it; counts it as handed. A sibling at
   * `limit` (worker_connections, the same in every worker) would refuse it;
   * a worker at `limit` itself hands over to any sibling below it.
   */
  handOverTo(mine: number, limit: number, now = performance.now()): number | undefined {
    if (this.handedSince !== 0 && now - this.handedSince > HANDED_STALE_MS) {
      this.handedSince = 0;
      for (const entry of this.siblings.values()) entry[1] = 0;
    }
    let best: number | undefined;
    let bestEstimate = Infinity;
    for (const [id, [reported, handed]] of this.siblings) {
      const estimate = reported + handed;
      if (estimate < bestEstimate && estimate < limit) {
        best = id;
        bestEstimate = estimate;
      }
    }
    if (best === undefined) return undefined;
    // A worker at worker_connections would refuse the connection: any sibling with room takes it (nginx's full
    // worker stops accepting and leaves new connections to the others).
    if (mine < limit && mine <= 1.5 * bestEstimate + SIBLING_COUNT_SLACK) return undefined;
    this.siblings.get(best)![1]++;
    if (this.handedSince === 0) this.handedSince = now;
    return best;
  }
}

type CloseableHandle = { close?: (cb?: () => void) => void };

/** Supervisor side: the workers' counts, shared with the others, and the relay of handed-over connections. */
export class ConnectionSpread {
  private readonly counts = new Map<Worker, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly workers: () => readonly Worker[]) {}

  /** Handles this module's messages; returns false for others. */
  onMessage(from: Worker, m: FromWorker, handle: unknown): boolean {
    if (m.type === 'ready') {
      // A worker that starts serving holds no connection yet: its siblings may hand it some at once, not only
      // after its first report. Others handle 'ready' too.
      if (!this.counts.has(from)) {
        this.counts.set(from, 0);
        this.scheduleFlush();
      }
      return false;
    }
    if (m.type === 'connections') {
      this.counts.set(from, m.count);
      this.scheduleFlush();
      return true;
    }
    if (m.type !== 'hand-over') return false;
    const h = handle as CloseableHandle | undefined;
    if (h === undefined) return true;
    // To the sibling asked for; back to the sender if that one is gone, or once the workers are stopping (the
    // sender accepted it a moment ago, so it is still serving, while the sibling may be about to exit).
    const sibling = this.stopping ? undefined : this.workers().find((w) => w.id === m.to && w.isConnected());
    const to = sibling ?? (from.isConnected() ? from : undefined);
    if (to === undefined) {
      h.close?.();
      return true;
    }
    // The descriptor is in the message once it is written; this process's copy is closed then.
    to.send({ type: 'adopt-connection', key: m.key } satisfies ToWorker, handle as never, () => h.close?.());
    return true;
  }

  workerGone(worker: Worker): void {
    if (this.counts.delete(worker)) this.scheduleFlush();
  }

  /** The workers are stopping: no more count broadcasts, and hand-overs go back to their senders. */
  stop(): void {
    this.stopping = true;
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const all = [...this.counts].filter(([w]) => w.isConnected()).map(([w, n]) => [w.id, n] as [number, number]);
      for (const [w] of this.counts) {
        if (w.isConnected()) w.send({ type: 'sibling-connections', counts: all.filter(([id]) => id !== w.id) } satisfies ToWorker);
      }
    }, 10);
    this.flushTimer.unref();
  }
}
