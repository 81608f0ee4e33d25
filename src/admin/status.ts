/**
 * What the status page shows, computed from two reports a second apart:
 * per server its state, request rate, error rate, latency and connections.
 */
import { histogramQuantile, type HistogramData } from '../upstream/histogram.js';
import type { RuntimeReport, ServerHealth, ServerReport } from '../runtime/report.js';
import type { ControlInfo } from './control.js';

export interface ServerView {
  address: string;
  state: ServerHealth;
  source: ServerReport['source'];
  backup: boolean;
  weight: number;
  /** Requests per second over the last interval. */
  rps: number;
  /** Share of requests that failed or got a 5xx over the last interval, 0..1. */
  errorRate: number;
  /** Median response-header latency over the last interval (the moving average when idle), ms. */
  latencyMs: number;
  active: number;
  connections: number;
  requests: number;
  failures: number;
}

export interface UpstreamView {
  name: string;
  method: string;
  implicit: boolean;
  servers: ServerView[];
}

export interface StatusView {
  at: number;
  version: string;
  mode: ControlInfo['mode'];
  pids: number[];
  generation: number;
  connections: number;
  rps: number;
  upstreams: UpstreamView[];
}

export function statusView(info: ControlInfo, cur: RuntimeReport, prev: RuntimeReport | undefined, seconds: number): StatusView {
  const before = new Map<string, ServerReport>();
  for (const u of prev?.upstreams ?? []) for (const s of u.servers) before.set(`${s.upstream}/${s.address}`, s);
  const dt = Math.max(seconds, 0.001);
  const total = (r: RuntimeReport | undefined): number => (r === undefined ? 0 : r.process.statusClasses.reduce((a, b) => a + b, 0));
  return {
    at: Date.now(),
    version: cur.version,
    mode: info.mode,
    pids: cur.pids,
    generation: cur.generation,
    connections: cur.connections,
    rps: prev === undefined ? 0 : Math.max(0, (total(cur) - total(prev)) / dt),
    upstreams: cur.upstreams.map((u) => ({
      name: u.name,
      method: u.method,
      implicit: u.implicit,
      servers: u.servers.map((s) => {
        const p = before.get(`${s.upstream}/${s.address}`);
        const requests = p === undefined ? 0 : Math.max(0, s.requests - p.requests);
        const errors = p === undefined ? 0 : Math.max(0, s.failures - p.failures + (s.responses[5] ?? 0) - (p.responses[5] ?? 0));
        const latency = p === undefined ? undefined : histogramDelta(s.headerLatency, p.headerLatency);
        return {
          address: s.address,
          state: s.state,
          source: s.source,
          backup: s.backup,
          weight: s.weight,
          rps: requests / dt,
          errorRate: requests === 0 ? (errors > 0 ? 1 : 0) : Math.min(1, errors / requests),
          latencyMs: latency !== undefined && latency.counts.some((c) => c > 0) ? histogramQuantile(latency, 0.5) : s.latencyEwmaMs,
          active: s.active,
          connections: s.connections,
          requests: s.requests,
          failures: s.failures,
        };
      }),
    })),
  };
}

function histogramDelta(a: HistogramData, b: HistogramData): HistogramData {
  return { counts: a.counts.map((c, i) => Math.max(0, c - (b.counts[i] ?? 0))), sum: a.sum - b.sum };
}
