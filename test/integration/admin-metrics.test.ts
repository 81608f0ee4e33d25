/**
 * Prometheus /metrics (issue 6), with worker_processes 2 so every number is
 * the sum over the workers: requests by status class and by upstream, server
 * and status class; latency histograms (upstream header time and total
 * request time); active connections and requests; retries; health state and
 * transitions; TLS handshakes and certificate expiry; reloads. Names follow
 * the Prometheus conventions.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { admin, metricSum, parseMetrics } from '../support/admin.js';
import { makeSelfSignedCert } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;
let tlsPort: number;
let adminPort: number;
let deadPort: number;
let certPath: string;
let cert: string;

async function scrape(): Promise<{ text: string; m: Map<string, number> }> {
  const r = await admin(adminPort, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return { text: r.text, m: parseMetrics(r.text) };
}

before(async () => {
  backends = await spawnBackends(2);
  [port, tlsPort, adminPort, deadPort] = await freePorts(4);
  const dir = tempDir('fulcrum-metrics-');
  ({ certPath, cert } = makeSelfSignedCert(dir, { commonName: 'metrics.test', days: 17 }));
  const keyPath = certPath.replace('.cert.pem', '.key.pem');
  fulcrum = await startFulcrum({
    dir,
    config: `
worker_processes 2;
admin { listen 127.0.0.1:${adminPort}; token m; }
http {
  access_log off;
  upstream app {
    server 127.0.0.1:${backends.ports[0]};
    server 127.0.0.1:${backends.ports[1]};
    server 127.0.0.1:${deadPort} max_fails=1 fail_timeout=60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_read_timeout 30s; }
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    server_name metrics.test;
    ssl_certificate ${certPath};
    ssl_certificate_key ${keyPath};
    location / { proxy_pass http://app; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

describe('/metrics (worker_processes 2: sums over the workers)', () => {
  test('requests, responses, latency, failures, retries, health', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await request({ port, path: '/hello' })).status);
    for (let i = 0; i < 4; i++) statuses.push((await request({ port, path: '/status/404' })).status);
    for (let i = 0; i < 3; i++) statuses.push((await request({ port, path: '/status/503' })).status);
    for (let i = 0; i < 5; i++) statuses.push((await request({ port: tlsPort, path: '/hello', tls: { ca: cert, servername: 'metrics.test' } })).status);
    const count = (cls: number): number => statuses.filter((s) => Math.floor(s / 100) === cls).length;
    const { text, m } = await scrape();

    assert.equal(m.get('fulcrum_workers'), 2);
    assert.equal(metricSum(m, 'fulcrum_http_requests_total', { status_class: '2xx' }), count(2));
    assert.equal(metricSum(m, 'fulcrum_http_requests_total', { status_class: '4xx' }), count(4));
    assert.equal(metricSum(m, 'fulcrum_http_requests_total', { status_class: '5xx' }), count(5));
    assert.equal(m.get('fulcrum_http_request_duration_seconds_count'), statuses.length);
    assert.equal(m.get('fulcrum_http_request_duration_seconds_bucket{le="+Inf"}'), statuses.length);

    const dead = { upstream: 'app', server: `127.0.0.1:${deadPort}` };
    const live = `127.0.0.1:${backends.ports[0]}`;
    // Every request reached a live backend; the dead server failed its first attempts, which were retried.
    assert.equal(metricSum(m, 'fulcrum_upstream_responses_total', { upstream: 'app' }), statuses.length);
    assert.equal(metricSum(m, 'fulcrum_upstream_responses_total', { upstream: 'app', status_class: '4xx' }), 4);
    assert.equal(metricSum(m, 'fulcrum_upstream_responses_total', { upstream: 'app', status_class: '5xx' }), 3);
    assert.ok(metricSum(m, 'fulcrum_upstream_failures_total', dead) >= 1);
    assert.equal(metricSum(m, 'fulcrum_upstream_retries_total', { upstream: 'app' }), metricSum(m, 'fulcrum_upstream_failures_total', dead));
    assert.equal(metricSum(m, 'fulcrum_upstream_requests_total', { upstream: 'app' }), statuses.length + metricSum(m, 'fulcrum_upstream_failures_total', dead));
    assert.equal(metricSum(m, 'fulcrum_upstream_server_up', dead), 0);
    assert.equal(metricSum(m, 'fulcrum_upstream_server_state', { ...dead, state: 'down' }), 1);
    assert.equal(metricSum(m, 'fulcrum_upstream_server_up', { server: live }), 1);
    assert.ok(metricSum(m, 'fulcrum_upstream_health_transitions_total', { ...dead, to: 'down' }) >= 1);

    // The upstream latency histogram: cumulative buckets, +Inf = count = responses from that server.
    const buckets = [...m].filter(([k]) => k.startsWith('fulcrum_upstream_response_header_duration_seconds_bucket{') && k.includes(`server="${live}"`)).map(([, v]) => v);
    assert.equal(buckets.length, 14);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'cumulative');
    assert.equal(buckets.at(-1), metricSum(m, 'fulcrum_upstream_response_header_duration_seconds_count', { server: live }));
    assert.equal(buckets.at(-1), metricSum(m, 'fulcrum_upstream_responses_total', { server: live }));
    assert.ok(metricSum(m, 'fulcrum_upstream_response_header_duration_seconds_sum', { server: live }) > 0);

    // Conventions: HELP and TYPE for every metric; counters end in _total; base units.
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      assert.ok(text.includes(`# HELP ${name} `), `${name} has HELP`);
      if (type === 'counter') assert.match(name!, /_total$/);
      assert.match(name!, /^fulcrum_[a-z_]+$/);
      assert.doesNotMatch(name!, /_(ms|milliseconds)(_|$)/);
    }
  });

  test('active connections and requests', async () => {
    const slow = request({ port, path: '/slow?ms=1200', timeoutMs: 10_000 });
    const { m } = await waitUntil(async () => {
      const s = await scrape();
      return metricSum(s.m, 'fulcrum_upstream_active_requests', { upstream: 'app' }) === 1 ? s : undefined;
    }, { timeoutMs: 2000, description: 'one active request' });
    assert.ok(metricSum(m, 'fulcrum_connections_active') >= 1);
    assert.ok(metricSum(m, 'fulcrum_upstream_connections', { upstream: 'app' }) >= 1);
    assert.equal((await slow).status, 200);
    assert.equal(metricSum((await scrape()).m, 'fulcrum_upstream_active_requests'), 0);
  });

  test('TLS handshakes and certificate expiry', async () => {
    const { m } = await scrape();
    assert.ok(metricSum(m, 'fulcrum_tls_handshakes_total') >= 5);
    const notAfter = Date.parse(new X509Certificate(cert).validTo) / 1000;
    assert.equal(metricSum(m, 'fulcrum_tls_certificate_expiry_timestamp_seconds', { server_name: 'metrics.test', file: certPath }), notAfter);
    const days = (notAfter - Date.now() / 1000) / 86400;
    assert.ok(days > 16 && days <= 17.1, `${days} days left`);
  });

  test('reloads: successes, failures, and whether the last one worked', async () => {
    const good = await fulcrum.reload();
    assert.equal(good.msg, 'reloaded');
    const text = (await import('node:fs')).readFileSync(fulcrum.configPath, 'utf8');
    await assert.rejects(fulcrum.reload(text.replace('access_log off;', 'access_log off; bogus_directive;')));
    let { m } = await scrape();
    assert.equal(metricSum(m, 'fulcrum_config_reloads_total', { result: 'success' }), 1);
    assert.equal(metricSum(m, 'fulcrum_config_reloads_total', { result: 'failure' }), 1);
    assert.equal(m.get('fulcrum_config_last_reload_successful'), 0);
    assert.ok(m.get('fulcrum_config_last_reload_timestamp_seconds')! > Date.now() / 1000 - 60);
    await fulcrum.reload(text);
    ({ m } = await scrape());
    assert.equal(m.get('fulcrum_config_last_reload_successful'), 1);
    assert.equal(m.get('fulcrum_config_generation'), 3);
  });
});
