/**
 * Process-wide request statistics, written on the hot path with plain field
 * and typed-array increments (no prom-client call per request) and read by
 * the metrics exporter, the admin API and the status page at scrape time.
 * Per-server statistics live on ServerState (src/upstream/server-state.ts).
 */
import { LatencyHistogram, type HistogramData } from '../upstream/histogram.js';

export class ProcessStats {
  /** Responses to clients by status class: index 0 = no status / 1xx, 2 = 2xx ... 5 = 5xx. */
  readonly statusClasses = new Float64Array(6);
  /** Whole request time as the client sees it ($request_time), ms. */
  readonly duration = new LatencyHistogram();
  tlsHandshakes = 0;
  tlsResumed = 0;
  tlsFailures = 0;

  record(status: number, ms: number): void {
    const c = (status / 100) | 0;
    this.statusClasses[c > 5 ? 5 : c]!++;
    this.duration.observe(ms);
  }
}

/** This process's request statistics. */
export const processStats = new ProcessStats();

/** Plain-data view for IPC. */
export interface ProcessStatsData {
  statusClasses: number[];
  duration: HistogramData;
  tlsHandshakes: number;
  tlsResumed: number;
  tlsFailures: number;
}

export function processStatsData(s: ProcessStats = processStats): ProcessStatsData {
  return {
    statusClasses: Array.from(s.statusClasses),
    duration: s.duration.toJSON(),
    tlsHandshakes: s.tlsHandshakes,
    tlsResumed: s.tlsResumed,
    tlsFailures: s.tlsFailures,
  };
}
