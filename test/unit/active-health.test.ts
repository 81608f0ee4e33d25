/** Active health checks: probes (HTTP status/body, TCP), rise/fall, events, following membership, stopping. */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { roundRobin } from '../../src/balancer/policies/round-robin.js';
import { HealthCheck, UpstreamBlock, UpstreamServer } from '../../src/config/schema.js';
import { ActiveHealth, applyVerdict, probe, statusMatcher, type HealthVerdict } from '../../src/health/active.js';
import { onHealthEvent, type HealthEvent } from '../../src/health/passive.js';
import { MANDATORY_PENDING, UpstreamGroup } from '../../src/upstream/group.js';
import { ServerState } from '../../src/upstream/server-state.js';
import { listenOn } from '../support/ports.js';
import { waitUntil } from '../support/wait.js';

let status = 200;
let body = 'ok';
let slowMs = 0;
let server: http.Server;
let port = 0;
let closedPort = 0;

before(async () => {
  server = http.createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'text/plain', 'x-host': req.headers.host ?? '', 'x-method': req.method ?? '' });
      res.end(body);
    }, slowMs);
  });
  port = await listenOn(server);
  const tmp = net.createServer();
  closedPort = await listenOn(tmp);
  await new Promise((r) => tmp.close(r));
});

after(() => new Promise<void>((r) => server.close(() => r())));

const state = (p = port, address = `127.0.0.1:${p}`) => new ServerState('hc', address, { host: '127.0.0.1', port: p });
const once = (s: ServerState, config: Record<string, unknown>) =>
  new Promise<{ ok: boolean; detail: string }>((resolve) => probe(s, HealthCheck.parse(config), undefined, resolve));

test('status ranges and negations', () => {
  const m = statusMatcher(['200-299', '301', '!204']);
  assert.deepEqual([200, 204, 250, 301, 302, 500].map(m), [true, false, true, true, false, false]);
  const n = statusMatcher(['!500-599']);
  assert.deepEqual([200, 404, 503].map(n), [true, true, false]);
});

test('HTTP probes: status, body regex, timeout, refused connection; TCP probes', async () => {
  status = 200;
  body = 'all good';
  assert.deepEqual(await once(state(), { uri: '/healthz' }), { ok: true, detail: 'status 200' });
  assert.equal((await once(state(), { uri: '/healthz', body: 'good$' })).ok, true);
  assert.deepEqual(await once(state(), { uri: '/healthz', body: '^ok' }), { ok: false, detail: 'body of GET /healthz does not match /^ok/' });
  status = 503;
  assert.deepEqual(await once(state(), { uri: '/healthz', method: 'HEAD' }), { ok: false, detail: 'status 503 on HEAD /healthz' });
  assert.equal((await once(state(), { status: ['500-599'] })).ok, true);
  status = 200;
  slowMs = 300;
  assert.deepEqual(await once(state(), { timeout: '50ms' }), { ok: false, detail: 'timed out after 50 ms' });
  slowMs = 0;
  assert.match((await once(state(closedPort), {})).detail, /ECONNREFUSED/);
  assert.equal((await once(state(), { type: 'tcp' })).ok, true);
  assert.equal((await once(state(closedPort), { type: 'tcp' })).ok, false);
});

function upstream(servers: ServerState[], hc: Record<string, unknown>): UpstreamGroup {
  const config = UpstreamBlock.parse({ name: 'hc', servers: servers.map((s) => ({ address: s.address })), health_check: hc });
  const g = new UpstreamGroup('hc', servers, servers.map((s) => UpstreamServer.parse({ address: s.address })), { maxIdle: 0, idleTimeoutMs: 1, maxRequests: 1, maxLifetimeMs: 1 }, roundRobin, false, config);
  g.activate();
  return g;
}

test('fall failures in a row take a server out, rise passes bring it back, with events and verdicts', async () => {
  status = 200;
  const events: HealthEvent[] = [];
  const off = onHealthEvent((e) => void (e.source === 'active' && events.push(e)));
  const verdicts: HealthVerdict[] = [];
  const s = state();
  const g = upstream([s], { interval: '40ms', fall: 2, rise: 3, uri: '/x' });
  const health = new ActiveHealth((_s, v) => verdicts.push(v));
  try {
    health.sync(new Map([['hc', g]]));
    await waitUntil(() => s.probePasses >= 2, { description: 'probes passing' });
    assert.equal(s.healthy, true);
    status = 500;
    await waitUntil(() => !s.healthy, { description: 'marked down' });
    assert.equal(s.probeFails, 2);
    assert.equal(events.at(-1)?.state, 'down');
    assert.match(events.at(-1)!.reason, /^2 health check\(s\) failed in a row, last: status 500 on GET \/x$/);
    status = 200;
    await waitUntil(() => s.healthy, { description: 'back up' });
    assert.equal(s.probePasses, 3);
    assert.match(events.at(-1)!.reason, /^3 health check\(s\) passed in a row/);
    assert.deepEqual(verdicts.map((v) => v.healthy), [false, true]);
    // A worker applies the supervisor's verdicts to its own copy.
    const copy = state();
    applyVerdict(copy, verdicts[0]!);
    assert.equal(copy.healthy, false);
    assert.ok(Math.abs(performance.timeOrigin + copy.healthChangedAt - verdicts[0]!.at) < 1);
  } finally {
    health.stop();
    off();
  }
});

test('sync keeps probers of servers that stay, drops removed ones, follows membership changes, and restores health when checks are removed', async () => {
  status = 500;
  const a = state();
  const b = state(port, `localhost:${port}`);
  const g = upstream([a, b], { interval: '30ms', fall: 1, rise: 1 });
  const health = new ActiveHealth();
  try {
    health.sync(new Map([['hc', g]]));
    await waitUntil(() => !a.healthy && !b.healthy, { description: 'both down' });
    g.setServers([a]);
    assert.deepEqual(health.probed().get('hc'), [a]);
    const c = state(port, `127.0.0.2:${port}`);
    g.setServers([a, c]);
    assert.deepEqual(health.probed().get('hc'), [a, c]);
    // Same server state in the next generation: its counters are kept.
    const fails = a.probeFails;
    const g2 = upstream([a, c], { interval: '30ms', fall: 1, rise: 1 });
    health.sync(new Map([['hc', g2]]));
    assert.ok(a.probeFails >= fails);
    const g3 = new UpstreamGroup('hc', [a, c], [], { maxIdle: 0, idleTimeoutMs: 1, maxRequests: 1, maxLifetimeMs: 1 }, roundRobin, false, UpstreamBlock.parse({ name: 'hc', servers: [{ address: 'x' }] }));
    health.sync(new Map([['hc', g3]]));
    assert.equal(a.healthy, true);
    assert.equal(a.healthReason, 'health_check removed from the configuration');
    assert.equal(health.probed().size, 0);
  } finally {
    health.stop();
    status = 200;
  }
});

test('mandatory: a new server gets no traffic until its first probe passes, probed at once', async () => {
  status = 200;
  const s = state();
  const g = upstream([s], { interval: '10s', mandatory: true });
  assert.equal(s.healthy, false);
  assert.equal(s.healthReason, MANDATORY_PENDING);
  const health = new ActiveHealth();
  try {
    health.sync(new Map([['hc', g]]));
    await waitUntil(() => s.healthy, { timeoutMs: 2000, description: 'first probe passed' });
    assert.match(s.healthReason, /^first health check passed/);
  } finally {
    health.stop();
  }
});
