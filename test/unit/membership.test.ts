/**
 * Membership: which servers an upstream has, from the config, discovery and
 * admin changes; and the supervisor's aggregation of worker reports.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamBlock, type UpstreamBlockConfig } from '../../src/config/schema.js';
import { Membership, dnsSourceId, FILE_SOURCE } from '../../src/runtime/membership.js';
import { mergeReports, type RuntimeReport, type ServerReport } from '../../src/runtime/report.js';
import { LatencyHistogram, histogramQuantile } from '../../src/upstream/histogram.js';

function upstream(servers: object[], extra: object = {}): UpstreamBlockConfig {
  return UpstreamBlock.parse({ name: 'app', servers, ...extra });
}

const addresses = (m: Membership, u: UpstreamBlockConfig): string[] => m.effective(u).map((s) => s.address);

describe('membership', () => {
  test('config servers; a resolve name is used as is until DNS answers, then replaced by its addresses', () => {
    const u = upstream([{ address: '10.0.0.1:80' }, { address: 'backend:8080', resolve: true, max_fails: 3 }]);
    const m = new Membership();
    assert.deepEqual(addresses(m, u), ['10.0.0.1:80', 'backend:8080']);
    m.setDiscovered('app', dnsSourceId(u.servers[1]!), [{ address: '172.18.0.3:8080' }, { address: '172.18.0.4:8080' }]);
    const eff = m.effective(u);
    assert.deepEqual(eff.map((s) => [s.address, s.source, s.params.max_fails]), [
      ['10.0.0.1:80', 'config', 1],
      ['172.18.0.3:8080', 'dns', 3],
      ['172.18.0.4:8080', 'dns', 3],
    ]);
    m.setDiscovered('app', dnsSourceId(u.servers[1]!), []);
    assert.deepEqual(addresses(m, u), ['10.0.0.1:80'], 'an empty answer is an answer');
    assert.equal(m.setDiscovered('app', dnsSourceId(u.servers[1]!), []), false, 'no change reported twice');
  });

  test('SRV entries carry weight and backup; a servers file adds its servers', () => {
    const u = upstream([{ address: 'svc.test', service: 'http', resolve: true }], { servers_file: 'b.yaml' });
    const m = new Membership();
    assert.deepEqual(addresses(m, u), [], 'nothing before the first SRV answer');
    m.setDiscovered('app', dnsSourceId(u.servers[0]!), [{ address: '10.0.0.1:80', weight: 5 }, { address: '10.0.0.2:80', weight: 0, backup: true }]);
    m.setDiscovered('app', FILE_SOURCE, [{ address: '10.0.0.9:80', params: UpstreamBlock.parse({ name: 'x', servers: [{ address: '10.0.0.9:80', weight: 7 }] }).servers[0]! }]);
    assert.deepEqual(m.effective(u).map((s) => [s.address, s.params.weight, s.params.backup, s.source]), [
      ['10.0.0.1:80', 5, false, 'srv'],
      ['10.0.0.2:80', 1, true, 'srv'],
      ['10.0.0.9:80', 7, false, 'file'],
    ]);
  });

  test('admin changes: drain/disable/enable as parameters, add, remove, with errors', () => {
    const u = upstream([{ address: 'a:80' }, { address: 'b:80', down: true }]);
    const m = new Membership();
    assert.deepEqual(m.apply({ op: 'drain', upstream: 'app', server: 'a:80' }, u), { ok: true });
    assert.equal(m.effective(u)[0]!.params.drain, true);
    assert.deepEqual(m.apply({ op: 'enable', upstream: 'app', server: 'b:80' }, u), { ok: true });
    assert.equal(m.effective(u)[1]!.params.down, false, 'enable overrides the config');
    const params = upstream([{ address: 'c:80', weight: 2 }]).servers[0]!;
    assert.deepEqual(m.apply({ op: 'add', upstream: 'app', server: 'c:80', params }, u), { ok: true });
    assert.deepEqual(addresses(m, u), ['a:80', 'b:80', 'c:80']);
    assert.equal((m.apply({ op: 'add', upstream: 'app', server: 'c:80', params }, u) as { status: number }).status, 409);
    assert.deepEqual(m.apply({ op: 'remove', upstream: 'app', server: 'a:80' }, u), { ok: true });
    assert.deepEqual(addresses(m, u), ['b:80', 'c:80']);
    assert.equal((m.apply({ op: 'drain', upstream: 'app', server: 'a:80' }, u) as { status: number }).status, 404);
    assert.equal((m.apply({ op: 'drain', upstream: 'nope', server: 'b:80' }, undefined) as { status: number }).status, 404);
    assert.deepEqual(m.apply({ op: 'add', upstream: 'app', server: 'a:80', params }, u), { ok: true }, 'a removed config server comes back');
    assert.equal(m.effective(u).find((s) => s.address === 'a:80')!.params.drain, false, 'without its old drain');
    m.apply({ op: 'remove', upstream: 'app', server: 'c:80' }, u);
    m.apply({ op: 'remove', upstream: 'app', server: 'b:80' }, u);
    assert.equal((m.apply({ op: 'remove', upstream: 'app', server: 'a:80' }, u) as { status: number }).status, 409, 'not the last one');
  });

  test('the state survives a trip through IPC (plain data)', () => {
    const u = upstream([{ address: 'a:80' }, { address: 'n:80', resolve: true }]);
    const m = new Membership();
    m.apply({ op: 'drain', upstream: 'app', server: 'a:80' }, u);
    m.setDiscovered('app', dnsSourceId(u.servers[1]!), [{ address: '10.1.1.1:80' }]);
    const copy = Membership.fromState(JSON.parse(JSON.stringify(m.toState())));
    assert.deepEqual(copy.effective(u), m.effective(u));
  });
});

function server(address: string, patch: Partial<ServerReport>): ServerReport {
  const h = new LatencyHistogram();
  return {
    upstream: 'app', address, source: 'config', state: 'up', backup: false, weight: 1, maxFails: 1, failTimeoutMs: 10_000, fails: 0, healthy: true, drain: false, down: false,
    active: 0, remoteActive: 0, connections: 0, requests: 0, responses: [0, 0, 0, 0, 0, 0], failures: 0, retries: 0, latencyEwmaMs: 0, headerLatency: h.toJSON(), wentDown: 0, cameUp: 0, ...patch,
  };
}

function report(pid: number, servers: ServerReport[]): RuntimeReport {
  return {
    version: 't', pids: [pid], generation: 2, connections: 3, upstreams: [{ name: 'app', method: 'round_robin', implicit: false, servers }],
    process: { statusClasses: [0, 0, 5, 0, 1, 0], duration: new LatencyHistogram().toJSON(), tlsHandshakes: 1, tlsResumed: 0, tlsFailures: 0 },
  };
}

describe('aggregation and histograms', () => {
  test('worker reports add up; the worst state wins', () => {
    const merged = mergeReports([
      report(1, [server('a:80', { requests: 10, active: 2, responses: [0, 0, 9, 0, 1, 0], latencyEwmaMs: 2 })]),
      report(2, [server('a:80', { requests: 30, active: 1, responses: [0, 0, 30, 0, 0, 0], latencyEwmaMs: 4, state: 'down' })]),
    ])!;
    const a = merged.upstreams[0]!.servers[0]!;
    assert.deepEqual([a.requests, a.active, a.responses[2], a.state, a.latencyEwmaMs], [40, 3, 39, 'down', 3.5]);
    assert.deepEqual([merged.pids, merged.connections, merged.process.statusClasses[2]], [[1, 2], 6, 10]);
  });

  test('the latency histogram: fixed buckets, quantiles', () => {
    const h = new LatencyHistogram();
    for (const ms of [0.5, 0.9, 3, 3, 7, 40, 20_000]) h.observe(ms);
    assert.equal(h.count, 7);
    assert.deepEqual(Array.from(h.counts), [2, 0, 2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    const q = histogramQuantile(h.toJSON(), 0.5);
    assert.ok(q > 2.5 && q <= 5, `median ${q}`);
  });
});
