/**
 * Prometheus /metrics with prom-client. Nothing is counted through
 * prom-client on the request path: requests are counted in plain fields and
 * typed arrays (ServerState, ProcessStats, LatencyHistogram), and the
 * collectors below read them when Prometheus scrapes. With workers, one
 * scrape asks every worker for its report over IPC and adds them up
 * (mergeReports), so the numbers are the cluster's.
 *
 * Names follow the Prometheus conventions: `_total` counters, base units
 * (seconds), `_timestamp_seconds` for points in time, one metric per meaning
 * with labels for upstream, server, status class and state.
 */
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RuntimeReport } from '../runtime/report.js';
import { LATENCY_BOUNDS_MS, type HistogramData } from '../upstream/histogram.js';
import type { ControlPlane } from './control.js';

const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];
const STATES = ['up', 'down', 'unhealthy', 'draining', 'disabled', 'full'] as const;

type Labels = Record<string, string>;

/** A histogram whose buckets are read from fulcrum's own counters at scrape time. */
class FieldHistogram extends Histogram<string> {
  constructor(
    private readonly meta: { name: string; help: string; labelNames: string[] },
    private readonly read: () => Promise<{ labels: Labels; data: HistogramData }[]>,
    registry: Registry,
  ) {
    super({ name: meta.name, help: meta.help, labelNames: meta.labelNames, buckets: LATENCY_BOUNDS_MS.map((ms) => ms / 1000), registers: [registry] });
  }

  /** prom-client's registry prefers this over get() when it exists. */
  async getForPromString(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    return this.get();
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, data } of await this.read()) {
      let cumulative = 0;
      LATENCY_BOUNDS_MS.forEach((ms, i) => {
        cumulative += data.counts[i] ?? 0;
        values.push({ labels: { ...labels, le: ms / 1000 }, value: cumulative, metricName: `${this.meta.name}_bucket` });
      });
      cumulative += data.counts[LATENCY_BOUNDS_MS.length] ?? 0;
      values.push({ labels: { ...labels, le: '+Inf' }, value: cumulative, metricName: `${this.meta.name}_bucket` });
      values.push({ labels, value: data.sum / 1000, metricName: `${this.meta.name}_sum` });
      values.push({ labels, value: cumulative, metricName: `${this.meta.name}_count` });
    }
    return { name: this.meta.name, help: this.meta.help, type: 'histogram' as never, values, aggregator: 'sum', collect: () => undefined };
  }
}

interface ScrapeSource {
  report(): Promise<RuntimeReport>;
  /** A new scrape begins: the next report() asks again. */
  reset(): void;
}

/** One report per scrape: every collector of the same scrape shares it (with workers, one IPC round trip per scrape). */
function sharedReport(control: ControlPlane): ScrapeSource {
  let cached: Promise<RuntimeReport> | undefined;
  return {
    report() {
      cached ??= control.report();
      return cached;
    },
    reset() {
      cached = undefined;
    },
  };
}

export interface Metrics {
  registry: Registry;
  /** The Prometheus text of the current state. */
  scrape(): Promise<string>;
}

function serverLabels(s: { upstream: string; address: string }): Labels {
  return { upstream: s.upstream, server: s.address };
}

function* servers(r: RuntimeReport): Generator<RuntimeReport['upstreams'][number]['servers'][number]> {
  for (const u of r.upstreams) yield* u.servers;
}

export function createMetrics(control: ControlPlane): Metrics {
  const registry = new Registry();
  const source = sharedReport(control);
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[], fill: (r: RuntimeReport, set: (labels: Labels, v: number) => void) => void): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const r = await source.report();
        this.reset();
        fill(r, (labels, v) => this.inc(labels, v));
      },
    });
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (r: RuntimeReport, set: (labels: Labels, v: number) => void) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const r = await source.report();
        this.reset();
        fill(r, (labels, v) => this.set(labels, v));
      },
    });
  };

  gauge('fulcrum_build_info', 'fulcrum version (always 1).', ['version'], (r, set) => set({ version: r.version }, 1));
  gauge('fulcrum_workers', 'Worker processes serving traffic.', [], (r, set) => set({}, r.pids.length));
  gauge('fulcrum_config_generation', 'Generation of the running configuration (1 at start, +1 per reload).', [], (r, set) => set({}, r.generation));

  // ---- clients
  counter('fulcrum_http_requests_total', 'Requests answered, by the status class sent to the client.', ['status_class'], (r, set) => {
    r.process.statusClasses.forEach((v, i) => set({ status_class: STATUS_CLASSES[i]! }, v));
  });
  new FieldHistogram(
    { name: 'fulcrum_http_request_duration_seconds', help: 'Whole request time as the client sees it ($request_time).', labelNames: [] },
    async () => [{ labels: {}, data: (await source.report()).process.duration }],
    registry,
  );
  gauge('fulcrum_connections_active', 'Open client connections.', [], (r, set) => set({}, r.connections));

  // ---- upstreams
  counter('fulcrum_upstream_requests_total', 'Requests sent to an upstream server (retries included).', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.requests);
  });
  counter('fulcrum_upstream_responses_total', 'Upstream responses by status class.', ['upstream', 'server', 'status_class'], (r, set) => {
    for (const s of servers(r)) s.responses.forEach((v, i) => i > 0 && set({ ...serverLabels(s), status_class: STATUS_CLASSES[i]! }, v));
  });
  counter('fulcrum_upstream_failures_total', 'Failed attempts: connect errors, timeouts, invalid responses, statuses listed in proxy_next_upstream.', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.failures);
  });
  counter('fulcrum_upstream_retries_total', 'Requests sent to this server after another server failed them.', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.retries);
  });
  gauge('fulcrum_upstream_active_requests', 'Requests in flight to the server.', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.active);
  });
  gauge('fulcrum_upstream_connections', 'Open connections to the server, busy and idle.', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.connections);
  });
  new FieldHistogram(
    { name: 'fulcrum_upstream_response_header_duration_seconds', help: 'Time from sending a request upstream to its response head ($upstream_header_time).', labelNames: ['upstream', 'server'] },
    async () => [...servers(await source.report())].map((s) => ({ labels: serverLabels(s), data: s.headerLatency })),
    registry,
  );
  gauge('fulcrum_upstream_server_up', '1 when the server takes new requests (state up or full), else 0.', ['upstream', 'server'], (r, set) => {
    for (const s of servers(r)) set(serverLabels(s), s.state === 'up' || s.state === 'full' ? 1 : 0);
  });
  gauge('fulcrum_upstream_server_state', 'The server state: 1 for the current one.', ['upstream', 'server', 'state'], (r, set) => {
    for (const s of servers(r)) for (const state of STATES) set({ ...serverLabels(s), state }, s.state === state ? 1 : 0);
  });
  counter('fulcrum_upstream_health_transitions_total', 'Health state changes (passive or active health).', ['upstream', 'server', 'to'], (r, set) => {
    for (const s of servers(r)) {
      set({ ...serverLabels(s), to: 'down' }, s.wentDown);
      set({ ...serverLabels(s), to: 'up' }, s.cameUp);
    }
  });

  // ---- TLS
  counter('fulcrum_tls_handshakes_total', 'Completed TLS handshakes, by session (new or resumed).', ['session'], (r, set) => {
    set({ session: 'new' }, r.process.tlsHandshakes - r.process.tlsResumed);
    set({ session: 'resumed' }, r.process.tlsResumed);
  });
  counter('fulcrum_tls_handshake_errors_total', 'TLS handshakes that failed.', [], (r, set) => set({}, r.process.tlsFailures));
  const expiry = new CertificateExpiry();
  new Gauge({
    name: 'fulcrum_tls_certificate_expiry_timestamp_seconds',
    help: 'When each configured certificate expires (notAfter), Unix time.',
    labelNames: ['listener', 'server_name', 'file'],
    registers,
    collect() {
      this.reset();
      for (const c of control.certificates()) {
        const at = expiry.notAfter(c.file);
        if (at !== undefined) this.set({ listener: c.listener, server_name: c.serverName, file: c.file }, at / 1000);
      }
    },
  });

  // ---- reloads and discovery
  new Counter({
    name: 'fulcrum_config_reloads_total',
    help: 'Configuration reloads, by result.',
    labelNames: ['result'],
    registers,
    collect() {
      const r = control.reloads();
      this.reset();
      this.inc({ result: 'success' }, r.succeeded);
      this.inc({ result: 'failure' }, r.failed);
    },
  });
  new Gauge({
    name: 'fulcrum_config_last_reload_successful',
    help: '1 if the last reload succeeded (or none happened), else 0.',
    registers,
    collect() {
      this.set(control.reloads().lastOk ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fulcrum_config_last_reload_timestamp_seconds',
    help: 'When the last reload was attempted, Unix time (0: never).',
    registers,
    collect() {
      this.set(control.reloads().lastAt / 1000);
    },
  });
  new Counter({
    name: 'fulcrum_discovery_dns_lookups_total',
    help: 'DNS lookups for servers with "resolve", by result.',
    labelNames: ['result'],
    registers,
    collect() {
      const d = control.discovery();
      this.reset();
      this.inc({ result: 'success' }, d?.resolutions ?? 0);
      this.inc({ result: 'failure' }, d?.failures ?? 0);
    },
  });
  return {
    registry,
    async scrape() {
      source.reset();
      try {
        return await registry.metrics();
      } finally {
        source.reset();
      }
    },
  };
}

/** Certificate notAfter times, re-read only when a file changes (certbot renewals). */
class CertificateExpiry {
  private readonly cache = new Map<string, { mtimeMs: number; notAfter: number | undefined }>();

  notAfter(file: string): number | undefined {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return undefined;
    }
    const hit = this.cache.get(file);
    if (hit !== undefined && hit.mtimeMs === stat.mtimeMs) return hit.notAfter;
    let notAfter: number | undefined;
    try {
      notAfter = Date.parse(new X509Certificate(fs.readFileSync(file)).validTo);
      if (Number.isNaN(notAfter)) notAfter = undefined;
    } catch {
      notAfter = undefined;
    }
    this.cache.set(file, { mtimeMs: stat.mtimeMs, notAfter });
    return notAfter;
  }
}
