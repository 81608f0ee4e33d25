/**
 * Live state of one process as plain data: what the admin API lists, what the
 * status page shows and what /metrics exports. A worker sends it to the
 * supervisor on request; mergeReports() adds the workers' reports up.
 */
import { VERSION } from '../version.js';
import { addHistogram, type HistogramData } from '../upstream/histogram.js';
import type { UpstreamGroup } from '../upstream/group.js';
import type { ServerState } from '../upstream/server-state.js';
import { processStatsData, type ProcessStatsData } from './stats.js';

/** A server's state in one word: why it does or does not get new requests. */
export type ServerHealth = 'up' | 'down' | 'unhealthy' | 'draining' | 'disabled' | 'full';

export interface ServerReport {
  upstream: string;
  /** As configured or discovered ("backend_1:8080", "10.0.3.7:8080"). */
  address: string;
  source: ServerState['source'];
  state: ServerHealth;
  backup: boolean;
  weight: number;
  maxFails: number;
  failTimeoutMs: number;
  /** Passive health: failures within the current fail_timeout window. */
  fails: number;
  /** Active health verdict (true without health checks). */
  healthy: boolean;
  drain: boolean;
  down: boolean;
  /** Requests in flight (all workers once merged). */
  active: number;
  /** This worker's view of the other workers' requests in flight (least_conn); not meaningful once merged. */
  remoteActive: number;
  /** Open upstream connections, busy and idle. */
  connections: number;
  requests: number;
  /** Upstream responses by status class: [other, 1xx, 2xx, 3xx, 4xx, 5xx]. */
  responses: number[];
  /** Attempts that failed (connect errors, timeouts, invalid responses, listed 5xx). */
  failures: number;
  retries: number;
  latencyEwmaMs: number;
  headerLatency: HistogramData;
  /** Health transitions seen by this process (not counting ones relayed from other workers). */
  wentDown: number;
  cameUp: number;
}

export interface UpstreamReport {
  name: string;
  method: string;
  /** Made from a `proxy_pass http://host:port` without an upstream block. */
  implicit: boolean;
  servers: ServerReport[];
}

export interface RuntimeReport {
  version: string;
  pids: number[];
  generation: number;
  /** Open client connections. */
  connections: number;
  upstreams: UpstreamReport[];
  process: ProcessStatsData;
}

/** Health transitions by server key, counted where they happened (local events only). */
export const healthTransitions = new Map<string, { down: number; up: number }>();

export function serverHealth(s: ServerState, now: number): ServerHealth {
  if (s.configDown) return 'disabled';
  if (s.drain) return 'draining';
  if (!s.healthy) return 'unhealthy';
  if (s.failedSince !== 0 || s.isFailed(now)) return 'down';
  if (s.maxConns !== 0 && s.active >= s.maxConns) return 'full';
  return 'up';
}

export function serverReport(s: ServerState, now: number): ServerReport {
  const t = healthTransitions.get(s.key);
  return {
    upstream: s.upstream,
    address: s.address,
    source: s.source,
    state: serverHealth(s, now),
    backup: s.backup,
    weight: s.weight,
    maxFails: s.maxFails,
    failTimeoutMs: s.failTimeoutMs,
    fails: s.fails,
    healthy: s.healthy,
    drain: s.drain,
    down: s.configDown,
    active: s.active,
    remoteActive: s.remoteActive,
    connections: s.connections,
    requests: s.requests,
    responses: [...s.responses],
    failures: s.failures,
    retries: s.retries,
    latencyEwmaMs: s.latencyEwmaMs,
    headerLatency: s.headerLatency.toJSON(),
    wentDown: t?.down ?? 0,
    cameUp: t?.up ?? 0,
  };
}

export function runtimeReport(groups: ReadonlyMap<string, UpstreamGroup>, generation: number, connections: number): RuntimeReport {
  const now = performance.now();
  const upstreams: UpstreamReport[] = [];
  for (const g of groups.values()) {
    upstreams.push({ name: g.name, method: g.config?.balance.method ?? 'round_robin', implicit: g.implicit, servers: g.servers.map((s) => serverReport(s, now)) });
  }
  return { version: VERSION, pids: [process.pid], generation, connections, upstreams, process: processStatsData() };
}

const WORSE: Record<ServerHealth, number> = { up: 0, full: 1, down: 2, unhealthy: 3, draining: 4, disabled: 5 };

/** Adds up the reports of several workers (the supervisor's view). */
export function mergeReports(reports: readonly RuntimeReport[]): RuntimeReport | undefined {
  if (reports.length === 0) return undefined;
  if (reports.length === 1) return reports[0];
  const first = reports[0]!;
  const out: RuntimeReport = structuredClone(first);
  const byKey = new Map<string, ServerReport>();
  const upstreamByName = new Map<string, UpstreamReport>();
  for (const u of out.upstreams) {
    upstreamByName.set(u.name, u);
    for (const s of u.servers) byKey.set(`${s.upstream}/${s.address}`, s);
  }
  for (const r of reports.slice(1)) {
    out.pids.push(...r.pids);
    out.generation = Math.max(out.generation, r.generation);
    out.connections += r.connections;
    for (let i = 0; i < out.process.statusClasses.length; i++) out.process.statusClasses[i]! += r.process.statusClasses[i] ?? 0;
    addHistogram(out.process.duration, r.process.duration);
    out.process.tlsHandshakes += r.process.tlsHandshakes;
    out.process.tlsResumed += r.process.tlsResumed;
    out.process.tlsFailures += r.process.tlsFailures;
    for (const u of r.upstreams) {
      let mine = upstreamByName.get(u.name);
      if (mine === undefined) {
        mine = structuredClone(u);
        out.upstreams.push(mine);
        upstreamByName.set(u.name, mine);
        for (const s of mine.servers) byKey.set(`${s.upstream}/${s.address}`, s);
        continue;
      }
      for (const s of u.servers) {
        const m = byKey.get(`${s.upstream}/${s.address}`);
        if (m === undefined) {
          const copy = structuredClone(s);
          mine.servers.push(copy);
          byKey.set(`${s.upstream}/${s.address}`, copy);
          continue;
        }
        if (WORSE[s.state] > WORSE[m.state]) m.state = s.state;
        m.fails = Math.max(m.fails, s.fails);
        m.healthy &&= s.healthy;
        m.active += s.active;
        m.connections += s.connections;
        const total = m.requests + s.requests;
        if (s.latencyEwmaMs > 0) m.latencyEwmaMs = m.latencyEwmaMs === 0 || total === 0 ? s.latencyEwmaMs : (m.latencyEwmaMs * m.requests + s.latencyEwmaMs * s.requests) / total;
        m.requests = total;
        for (let i = 0; i < m.responses.length; i++) m.responses[i]! += s.responses[i] ?? 0;
        m.failures += s.failures;
        m.retries += s.retries;
        addHistogram(m.headerLatency, s.headerLatency);
        m.wentDown += s.wentDown;
        m.cameUp += s.cameUp;
      }
    }
  }
  return out;
}
