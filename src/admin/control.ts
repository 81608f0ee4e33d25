/**
 * What the admin API, the status page and /metrics need from the process
 * that runs them. Two implementations: LocalControl (one process: reads and
 * changes its own Runtime) and the supervisor's (src/lifecycle/supervisor.ts:
 * asks every worker over IPC and adds the answers up).
 */
import type { ConfigFormat } from '../config/load.js';
import type { DiscoveryStats } from '../discovery/discovery.js';
import type { OpResult, ServerOp } from '../runtime/membership.js';
import type { RuntimeReport } from '../runtime/report.js';
import type { ReloadResult, ReloadStats, Runtime } from '../runtime/runtime.js';
import type { RuntimeTable } from '../runtime/table.js';
import { VERSION } from '../version.js';

export interface ControlInfo {
  version: string;
  mode: 'single' | 'workers';
  /** The process running the admin listener. */
  pid: number;
  workers: number;
  configPath: string;
  format: ConfigFormat | undefined;
  startedAt: number;
}

/** A certificate file a TLS listener serves, for the expiry metric. */
export interface CertificateRef {
  listener: string;
  serverName: string;
  file: string;
}

export interface ControlPlane {
  info(): ControlInfo;
  report(): Promise<RuntimeReport>;
  /** One report per worker process (one with worker_processes 1). */
  workerReports(): Promise<RuntimeReport[]>;
  applyOp(op: ServerOp): Promise<OpResult>;
  reload(): Promise<ReloadResult>;
  reloads(): ReloadStats;
  certificates(): CertificateRef[];
  discovery(): DiscoveryStats | undefined;
}

export function certificatesOf(table: RuntimeTable | undefined): CertificateRef[] {
  const out: CertificateRef[] = [];
  for (const l of table?.listeners ?? []) {
    for (const t of l.tls) for (const c of t.certificates) out.push({ listener: l.key, serverName: t.names[0] ?? '', file: c.cert });
  }
  return out;
}

/** The control plane of a single fulcrum process. */
export class LocalControl implements ControlPlane {
  constructor(
    private readonly runtime: Runtime,
    private readonly doReload: () => Promise<ReloadResult>,
    private readonly discoveryStats: () => DiscoveryStats | undefined,
  ) {}

  info(): ControlInfo {
    return {
      version: VERSION,
      mode: 'single',
      pid: process.pid,
      workers: 1,
      configPath: this.runtime.options.configPath,
      format: this.runtime.options.format,
      startedAt: this.runtime.startedAt,
    };
  }

  report(): Promise<RuntimeReport> {
    return Promise.resolve(this.runtime.report());
  }

  workerReports(): Promise<RuntimeReport[]> {
    return Promise.resolve([this.runtime.report()]);
  }

  applyOp(op: ServerOp): Promise<OpResult> {
    return Promise.resolve(this.runtime.applyOp(op));
  }

  reload(): Promise<ReloadResult> {
    return this.doReload();
  }

  reloads(): ReloadStats {
    return this.runtime.reloads;
  }

  certificates(): CertificateRef[] {
    return certificatesOf(this.runtime.table);
  }

  discovery(): DiscoveryStats | undefined {
    return this.discoveryStats();
  }
}
