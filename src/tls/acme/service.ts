/**
 * Where the ACME client runs: exactly once per installation. The single
 * process (worker_processes 1) runs it beside its listeners; with workers,
 * the supervisor runs it and the workers only serve what it writes to
 * acme_storage (certificates through the file watcher, challenge files).
 */
import { log } from '../../log/error-log.js';
import type { RuntimeTable } from '../../runtime/table.js';
import type { AcmeServerSpec } from './spec.js';

/** The ACME specs of a compiled table, one per certificate lineage. */
export function acmeSpecsOf(table: Pick<RuntimeTable, 'listeners'>): AcmeServerSpec[] {
  const out = new Map<string, AcmeServerSpec>();
  for (const listener of table.listeners) {
    for (const tls of listener.tls) {
      if (tls.acme !== undefined) out.set(`${tls.acme.storage}\0${tls.acme.lineage}`, tls.acme);
    }
  }
  return [...out.values()];
}

export class AcmeService {
  private manager: import('./manager.js').AcmeManager | undefined;
  private pending: Promise<void> = Promise.resolve();

  /** Applies the ACME part of a configuration that is now live. */
  update(specs: readonly AcmeServerSpec[]): void {
    if (specs.length === 0 && this.manager === undefined) return;
    this.pending = this.pending
      .then(async () => {
        // The manager (and acme-client behind it) is loaded only when ACME is used.
        this.manager ??= new (await import('./manager.js')).AcmeManager();
        this.manager.update(specs);
      })
      .catch((err: unknown) => log().error({ error: (err as Error).message }, 'acme could not start'));
  }

  stop(): void {
    this.pending = this.pending.then(() => this.manager?.stop());
  }
}
