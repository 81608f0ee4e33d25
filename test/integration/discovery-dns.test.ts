/**
 * Service discovery through DNS, against a real DNS server on loopback
 * (dnsmasq, unprivileged on a free port), with worker_processes 2:
 *
 * - `server backend.test:PORT resolve` + `resolver 127.0.0.1:N`: every A
 *   record is a server. Scaling from 3 to 5 replicas (Docker Compose's
 *   `--scale backend=5` gives 5 A records) and a replica recreated with a new
 *   address are followed without a reload, in every worker.
 * - The TTL is honoured: with a 2 s TTL the supervisor asks about every 2 s,
 *   once for the whole cluster.
 * - SRV (`service=http`): the lowest priority gives the primary servers, the
 *   others are backups (used when the primaries fail).
 * - When DNS stops answering, the last servers found stay.
 *
 * Each replica listens on its own loopback address (127.0.0.11, .12, ...) and
 * the same port, like containers on a Compose network.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { admin, upstreamState } from '../support/admin.js';
import { Dnsmasq, dnsmasqMissing } from '../support/dnsmasq.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { sleep, waitUntil } from '../support/wait.js';

const skip = dnsmasqMissing();
const IPS = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15'];
let replicas: TestBackends[] = [];
let dns: Dnsmasq;
let fulcrum: FulcrumProcess;
let port: number;
let adminPort: number;
let backendPort: number;

before(async () => {
  if (skip) return;
  [port, adminPort, backendPort] = await freePorts(3);
  replicas = await Promise.all(IPS.map((host, i) => spawnBackends(1, { host, basePort: backendPort, namePrefix: `replica${i + 1}_` })));
  dns = await Dnsmasq.start({
    ttl: 2,
    hosts: { 'backend.test': IPS.slice(0, 3), 'r1.test': [IPS[0]!], 'r2.test': [IPS[1]!], 'r3.test': [IPS[2]!] },
    srv: [
      { name: '_http._tcp.svc.test', target: 'r1.test', port: backendPort, priority: 10, weight: 5 },
      { name: '_http._tcp.svc.test', target: 'r2.test', port: backendPort, priority: 10, weight: 5 },
      { name: '_http._tcp.svc.test', target: 'r3.test', port: backendPort, priority: 20, weight: 1 },
    ],
  });
  fulcrum = await startFulcrum({
    config: `
worker_processes 2;
admin { listen 127.0.0.1:${adminPort}; }
http {
  access_log off;
  resolver ${dns.address};
  resolver_timeout 2s;
  upstream app { server backend.test:${backendPort} resolve; }
  upstream srv { server svc.test service=http resolve max_fails=1 fail_timeout=30s; }
  server {
    listen 127.0.0.1:${port};
    location /app/ { proxy_pass http://app/; }
    location /srv/ { proxy_pass http://srv/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await dns?.stop();
  await Promise.all(replicas.map((r) => r.stop()));
});

async function addresses(upstream: string): Promise<string[]> {
  return (await upstreamState(adminPort, upstream)).servers.map((s) => s.address as string).sort();
}

/** Which replicas answer `n` requests, each on a new connection (so both workers serve some). */
async function answering(path: string, n = 30): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await request({ port, path });
    assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
    seen.add(String(r.headers['x-backend']));
  }
  return [...seen].sort();
}

const at = (ips: string[]): string[] => ips.map((ip) => `${ip}:${backendPort}`).sort();
const names = (idx: number[]): string[] => idx.map((i) => `replica${i + 1}_1`).sort();

describe('DNS discovery (dnsmasq on loopback, worker_processes 2)', { skip }, () => {
  test('A records: 3 replicas, scaled to 5, one recreated with a new address; followed without a reload, TTL honoured', async (t) => {
    await waitUntil(async () => JSON.stringify(await addresses('app')) === JSON.stringify(at(IPS.slice(0, 3))), { timeoutMs: 5000, description: 'the 3 A records as servers' });
    const servers = (await upstreamState(adminPort, 'app')).servers;
    assert.ok(servers.every((s) => s.source === 'dns'));
    assert.deepEqual(await answering('/app/hello'), names([0, 1, 2]));

    const scaledAt = performance.now();
    await dns.setHosts({ 'backend.test': IPS, 'r1.test': [IPS[0]!], 'r2.test': [IPS[1]!], 'r3.test': [IPS[2]!] });
    await waitUntil(async () => (await addresses('app')).length === 5, { timeoutMs: 6000, description: '5 servers after scaling' });
    const followedMs = performance.now() - scaledAt;
    assert.deepEqual(await answering('/app/hello', 40), names([0, 1, 2, 3, 4]), 'every worker uses all 5');

    // backend 3 is recreated with a new address (.13 -> .15), and the service scales back to 3.
    await dns.setHosts({ 'backend.test': [IPS[0]!, IPS[1]!, IPS[4]!], 'r1.test': [IPS[0]!], 'r2.test': [IPS[1]!], 'r3.test': [IPS[2]!] });
    await waitUntil(async () => JSON.stringify(await addresses('app')) === JSON.stringify(at([IPS[0]!, IPS[1]!, IPS[4]!])), { timeoutMs: 6000, description: 'the new address set' });
    assert.deepEqual(await answering('/app/hello'), names([0, 1, 4]));
    assert.equal(fulcrum.logs.filter((e) => e.msg === 'reloaded').length, 0, 'no reload was involved');
    assert.ok(fulcrum.logs.some((e) => e.msg === 'upstream servers changed' && e.upstream === 'app'));

    // TTL 2 s: the supervisor asks about every 2 s (not per worker, not per request).
    const from = performance.now();
    await sleep(6000);
    const queries = dns.queriesFor('backend.test', 'A', from);
    assert.ok(queries >= 2 && queries <= 4, `${queries} A queries in 6 s with a 2 s TTL`);
    t.diagnostic(`scaling followed in ${Math.round(followedMs)} ms; ${queries} A queries in 6 s`);
  });

  test('SRV: the lowest priority gives the primaries, the rest are backups used when the primaries fail', async () => {
    await waitUntil(async () => (await addresses('srv')).length === 3, { timeoutMs: 5000, description: 'three SRV targets' });
    const servers = (await upstreamState(adminPort, 'srv')).servers;
    const backups = servers.filter((s) => s.backup).map((s) => s.address);
    assert.deepEqual(backups, [`${IPS[2]}:${backendPort}`], 'priority 20 is a backup');
    assert.ok(servers.every((s) => s.source === 'srv'));
    assert.deepEqual(servers.filter((s) => !s.backup).map((s) => s.weight), [5, 5], 'SRV weights');
    assert.deepEqual(await answering('/srv/hello', 20), names([0, 1]), 'only the primaries while they work');
    await replicas[0]!.kill(0);
    await replicas[1]!.kill(0);
    // Passive health takes the primaries out after their first failures; the backup takes over.
    for (let i = 0; i < 4; i++) await request({ port, path: '/srv/hello' });
    assert.deepEqual(await answering('/srv/hello', 10), names([2]));
    await replicas[0]!.restart(0);
    await replicas[1]!.restart(0);
  });

  test('when DNS stops answering, the last servers found stay', async () => {
    const before = await addresses('app');
    await dns.stop();
    await fulcrum.waitForLog((e) => e.msg === 'DNS lookup failed: keeping the last servers found', 10_000);
    assert.deepEqual(await addresses('app'), before);
    const r = await request({ port, path: '/app/hello' });
    assert.equal(r.status, 200);
    const metrics = (await admin(adminPort, 'GET', '/metrics')).text;
    assert.match(metrics, /^fulcrum_discovery_dns_lookups_total\{result="failure"\} [1-9]/m);
  });
});
