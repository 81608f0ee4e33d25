/**
 * A worker process: one Runtime serving the listening sockets it shares with
 * its siblings (cluster, SCHED_NONE: the kernel hands each connection to one
 * worker; the supervisor never touches traffic). The supervisor tells it when
 * to reload and stop, and keeps every worker's view of the upstreams the same:
 *
 * - passive-health changes are exchanged through the supervisor, so every
 *   worker agrees on which servers are out;
 * - discovered servers (DNS, servers files) and admin API changes come from
 *   the supervisor, which runs discovery and the admin listener;
 * - each worker reports its requests in flight per server every ~100 ms, and
 *   gets the sum of the others' back as `remoteActive` (least_conn);
 * - the supervisor asks for a report (counters, state) when the admin API,
 *   the status page or /metrics need one.
 */
import type { Server } from 'node:net';
import { applyVerdict } from '../health/active.js';
import { applyPassiveOp, setPassiveOpSink } from '../health/passive.js';
import { applyRotationPosition, setRotationPositionSink } from '../balancer/policies/round-robin.js';
import { log } from '../log/error-log.js';
import type { ConfigFormat } from '../config/load.js';
import { inheritedFdsFromEnv, Runtime } from '../runtime/runtime.js';
import type { ServerOp } from '../runtime/membership.js';
import { setHandOver } from '../listeners/listener.js';
import { SIBLING_COUNT_SLACK, SiblingConnections } from './connection-spread.js';
import { isToWorker, type FromWorker } from './messages.js';
import { HANDOVER_DRAIN_MS } from './upgrade.js';

/** How often a worker reports its requests in flight (when they changed). */
export const LOAD_REPORT_MS = 100;
const INIT_TIMEOUT_MS = 5000;

function send(message: FromWorker, handle?: unknown): void {
  if (!process.connected) return;
  if (handle === undefined) process.send!(message);
  else process.send!(message, handle as Server, { keepOpen: true });
}

export async function runWorker(configPath: string, format: ConfigFormat | undefined): Promise<void> {
  const runtime = new Runtime({ configPath, format, role: 'worker', inheritedFds: inheritedFdsFromEnv() });
  setPassiveOpSink((op) => send({ type: 'passive', op }));
  setRotationPositionSink((key, cursor) => send({ type: 'rotation', key, cursor }));
  let stopping = false;
  const stop = async (handover = false): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await runtime.shutdown(handover ? { handoverMs: HANDOVER_DRAIN_MS } : {});
    process.exit(0);
  };
  const queuedOps: ServerOp[] = [];
  let initialised: () => void = () => undefined;
  const init = new Promise<void>((resolve) => {
    initialised = resolve;
    setTimeout(resolve, INIT_TIMEOUT_MS).unref();
  });
  const siblings = new SiblingConnections();
  setHandOver((key, clientHandle, connections, limit) => {
    // A stopping worker serves what it accepted itself: its siblings are stopping too.
    if (stopping || !process.connected) return false;
    const to = siblings.handOverTo(connections, limit);
    if (to === undefined) return false;
    // Closed once the message (and with it the descriptor) is written.
    process.send!({ type: 'hand-over', key, to } satisfies FromWorker, clientHandle as Server, () => (clientHandle as { close(): void }).close());
    return true;
  });
  process.on('message', (m: unknown, handle: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.type) {
      case 'sibling-connections':
        siblings.update(m.counts);
        return;
      case 'adopt-connection':
        if (handle !== undefined && runtime.listeners.get(m.key)?.adopt(handle) !== true) (handle as { close(): void }).close();
        return;
      case 'reload':
        void runtime.reload().then((r) => send(r.ok ? { type: 'reloaded' } : { type: 'reload-failed', error: r.error }));
        return;
      case 'shutdown':
        void stop();
        return;
      case 'reopen-logs':
        runtime.logSinks.reopen();
        return;
      case 'rotation':
        applyRotationPosition(m.key, m.cursor, performance.now());
        return;
      case 'passive': {
        const server = runtime.registry.get(m.op.key);
        if (server !== undefined) applyPassiveOp(server, m.op, performance.now());
        return;
      }
      case 'health':
        for (const verdict of m.verdicts) {
          const server = runtime.registry.get(verdict.key);
          if (server !== undefined) applyVerdict(server, verdict);
        }
        return;
      case 'handover-stop':
        void stop(true);
        return;
      case 'init':
        runtime.setMembershipState(m.membership);
        initialised();
        return;
      case 'discovered':
        runtime.setDiscovered(m.upstream, m.source, m.servers ?? undefined);
        return;
      case 'server-op':
        // Before the first table exists there is nothing to check the change against: it is applied once started.
        if (runtime.table === undefined) {
          queuedOps.push(m.op);
          send({ type: 'server-op-result', id: m.id, result: { ok: true } });
        } else {
          send({ type: 'server-op-result', id: m.id, result: runtime.applyOp(m.op) });
        }
        return;
      case 'remote-load':
        for (const [key, active] of m.load) {
          const server = runtime.registry.get(key);
          if (server !== undefined) server.remoteActive = active;
        }
        return;
      case 'report-request':
        send({ type: 'report', id: m.id, report: runtime.report() });
        return;
      case 'listen-fds-request': {
        let count = 0;
        for (const [key, listener] of runtime.listeners) {
          const handle = (listener.server as unknown as { _handle?: unknown })._handle;
          if (handle === undefined || handle === null) continue;
          send({ type: 'listen-fd', id: m.id, key }, handle);
          count++;
        }
        send({ type: 'listen-fds-done', id: m.id, count });
        return;
      }
      default:
        return;
    }
  });
  // Signals sent to the whole process group (Ctrl-C) are handled by the supervisor.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('SIGQUIT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGUSR2', () => undefined);
  // A supervisor that died without stopping us: finish what is in flight and go. A message sent as its
  // channel broke fails with EPIPE, emitted as 'error' on process: 'disconnect' follows, so it is not fatal.
  process.on('disconnect', () => void stop());
  process.on('error', () => undefined);
  send({ type: 'init-request' });
  await init;
  try {
    await runtime.start();
    for (const op of queuedOps.splice(0)) runtime.applyOp(op);
    send({ type: 'ready' });
  } catch (err) {
    log().error({ error: (err as Error).message }, 'worker failed to start');
    send({ type: 'start-failed', error: (err as Error).message });
    process.exit(1);
  }
  reportLoad(runtime);
}

/** Sends this worker's requests in flight per server and its connections when they changed, at most every LOAD_REPORT_MS. */
function reportLoad(runtime: Runtime): void {
  const last = new Map<string, number>();
  let lastConnections = -1;
  const reportConnections = () => {
    if (runtime.tracker.size === lastConnections) return;
    lastConnections = runtime.tracker.size;
    runtime.tracker.reported(lastConnections);
    send({ type: 'connections', count: lastConnections });
  };
  // A burst that opens or closes many connections is reported at once (after this turn's other accepts and
  // closes): siblings deciding hand-overs on a count up to 100 ms old kept a new burst that followed the close of
  // an old one where it landed (153/47 of wrk's 200 connections).
  let shiftReportQueued = false;
  runtime.tracker.watchSize(SIBLING_COUNT_SLACK, () => {
    if (shiftReportQueued) return;
    shiftReportQueued = true;
    setImmediate(() => {
      shiftReportQueued = false;
      reportConnections();
    });
  });
  const timer = setInterval(() => {
    reportConnections();
    const changed: [string, number][] = [];
    const seen = new Set<string>();
    for (const s of runtime.registry.all()) {
      seen.add(s.key);
      if ((last.get(s.key) ?? 0) !== s.active) {
        changed.push([s.key, s.active]);
        last.set(s.key, s.active);
      }
    }
    for (const key of last.keys()) {
      if (seen.has(key)) continue;
      last.delete(key);
      changed.push([key, 0]);
    }
    if (changed.length > 0) send({ type: 'load', load: changed });
  }, LOAD_REPORT_MS);
  timer.unref();
}
