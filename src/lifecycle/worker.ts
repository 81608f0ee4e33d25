/**
 * A worker process: one Runtime serving the listening sockets it shares with
 * its siblings (cluster, SCHED_NONE: the kernel hands each connection to one
 * worker; the supervisor never touches traffic). The supervisor tells it when
 * to reload and stop; passive-health changes are exchanged through the
 * supervisor so every worker agrees on which servers are out.
 */
import { applyPassiveOp, setPassiveOpSink } from '../health/passive.js';
import { log } from '../log/error-log.js';
import type { ConfigFormat } from '../config/load.js';
import { Runtime } from '../runtime/runtime.js';
import { isToWorker, type FromWorker } from './messages.js';

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

export async function runWorker(configPath: string, format: ConfigFormat | undefined): Promise<void> {
  const runtime = new Runtime({ configPath, format, role: 'worker' });
  setPassiveOpSink((op) => send({ type: 'passive', op }));
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await runtime.shutdown();
    process.exit(0);
  };
  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return;
    switch (m.type) {
      case 'reload':
        void runtime.reload().then((r) => send(r.ok ? { type: 'reloaded' } : { type: 'reload-failed', error: r.error }));
        return;
      case 'shutdown':
        void stop();
        return;
      case 'reopen-logs':
        runtime.logSinks.reopen();
        return;
      case 'passive': {
        const server = runtime.registry.get(m.op.key);
        if (server !== undefined) applyPassiveOp(server, m.op, performance.now());
        return;
      }
    }
  });
  // Signals sent to the whole process group (Ctrl-C) are handled by the supervisor.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('SIGHUP', () => undefined);
  // A supervisor that died without stopping us: finish what is in flight and go.
  process.on('disconnect', () => void stop());
  try {
    await runtime.start();
    send({ type: 'ready' });
  } catch (err) {
    log().error({ error: (err as Error).message }, 'worker failed to start');
    send({ type: 'start-failed', error: (err as Error).message });
    process.exit(1);
  }
}
