/**
 * The admin API (issue 6): off unless configured, 127.0.0.1 unless told
 * otherwise, reads open, every change behind the bearer token; list
 * upstreams and servers with live state; drain, disable, enable, add and
 * remove servers (kept across reloads); reload; validate a config without
 * applying it; documented in docs/admin-openapi.yaml.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { admin, upstreamState } from '../support/admin.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';

const TOKEN = 's3cret-admin-token';
const OPENAPI = fileURLToPath(new URL('../../../docs/admin-openapi.yaml', import.meta.url));
let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;
let adminPort: number;
let addr: string[];

function configText(extra = ''): string {
  return `
admin { listen ${adminPort}; token env:FULCRUM_TEST_ADMIN_TOKEN; }
http {
  access_log off;
  upstream app { server ${addr[0]}; server ${addr[1]}; }
  server {
    listen 127.0.0.1:${port};
    ${extra}
    location / { proxy_pass http://app; proxy_read_timeout 30s; }
  }
}
`;
}

before(async () => {
  backends = await spawnBackends(3);
  addr = backends.ports.map((p) => `127.0.0.1:${p}`);
  [port, adminPort] = await freePorts(2);
  fulcrum = await startFulcrum({ config: configText(), env: { FULCRUM_TEST_ADMIN_TOKEN: TOKEN } });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

async function answering(n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await request({ port, path: '/hello' });
    assert.equal(r.status, 200);
    seen.add(String(r.headers['x-backend']));
  }
  return [...seen].sort();
}

const server = (i: number): string => `/api/upstreams/app/servers/${addr[i]}`;

describe('admin listener', () => {
  test('off without an admin block; a bare port binds 127.0.0.1', async () => {
    const [p] = await freePorts(1);
    const plain = await startFulcrum({ config: `http { access_log off; server { listen 127.0.0.1:${p}; return 200; } }` });
    try {
      assert.ok(!plain.logs.some((e) => e.msg === 'admin listener ready'));
    } finally {
      await plain.stop();
    }
    const ready = fulcrum.logs.find((e) => e.msg === 'admin listener ready');
    assert.equal(ready?.address, `127.0.0.1:${adminPort}`);
  });

  test('reads are open; every change needs the bearer token; without a token changes are refused', async () => {
    assert.equal((await admin(adminPort, 'GET', '/api/upstreams')).status, 200);
    const missing = await admin(adminPort, 'POST', `${server(0)}/drain`);
    assert.equal(missing.status, 401);
    assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
    assert.equal((await admin(adminPort, 'POST', `${server(0)}/drain`, { token: 'wrong' })).status, 401);
    assert.equal((await admin(adminPort, 'POST', '/api/reload', { token: 'wrong' })).status, 401);
    assert.equal((await admin(adminPort, 'DELETE', server(0), { token: 'wrong' })).status, 401);
    assert.equal((await upstreamState(adminPort, 'app')).servers[0].state, 'up', 'nothing changed');

    const [p, a] = await freePorts(2);
    const tokenless = await startFulcrum({ config: `admin { listen 127.0.0.1:${a}; }\nhttp { access_log off; upstream u { server ${addr[0]}; } server { listen 127.0.0.1:${p}; location / { proxy_pass http://u; } } }` });
    try {
      const r = await admin(a, 'POST', `/api/upstreams/u/servers/${addr[0]}/drain`, { token: 'anything' });
      assert.equal(r.status, 403);
      assert.match(r.body.error, /disabled/);
    } finally {
      await tokenless.stop();
    }
  });

  test('lists upstreams and servers with live state', async () => {
    await answering(6);
    const list = await admin(adminPort, 'GET', '/api/upstreams');
    const app = list.body.upstreams.find((u: { name: string }) => u.name === 'app');
    assert.equal(app.method, 'round_robin');
    assert.deepEqual(app.servers.map((s: { address: string }) => s.address), [addr[0], addr[1]]);
    const s0 = (await admin(adminPort, 'GET', server(0))).body;
    for (const key of ['state', 'fails', 'active', 'connections', 'requests', 'responses', 'failures', 'latency_ms', 'weight', 'backup', 'health_transitions']) assert.ok(key in s0, key);
    assert.equal(s0.state, 'up');
    assert.ok(s0.requests >= 3);
    assert.ok(s0.responses['2xx'] >= 3);
    assert.ok(s0.latency_ms > 0);
    assert.equal((await admin(adminPort, 'GET', '/api/upstreams/nope')).status, 404);
    assert.equal((await admin(adminPort, 'GET', '/api/upstreams/app/servers/10.9.9.9:1')).status, 404);
    assert.equal((await admin(adminPort, 'GET', '/api/nothing-here')).status, 404);
  });

  test('drain lets requests in flight finish and sends no new ones; disable and enable', async () => {
    const slow = request({ port, path: '/slow?ms=700', headers: {}, timeoutMs: 10_000 });
    const slowHeaders = slow.then((r) => r);
    const drained = await admin(adminPort, 'POST', `${server(0)}/drain`, { token: TOKEN });
    assert.equal(drained.status, 200, drained.text);
    assert.equal(drained.body.state.state, 'draining');
    assert.deepEqual(await answering(10), ['backend_2']);
    assert.equal((await slowHeaders).status, 200, 'the request in flight finished');

    assert.equal((await admin(adminPort, 'POST', `${server(1)}/disable`, { token: TOKEN })).status, 200);
    assert.equal((await upstreamState(adminPort, 'app')).servers[1].state, 'disabled');
    assert.equal((await request({ port, path: '/hello' })).status, 502, 'no server left');
    assert.equal((await admin(adminPort, 'POST', `${server(0)}/enable`, { token: TOKEN })).status, 200);
    assert.equal((await admin(adminPort, 'POST', `${server(1)}/enable`, { token: TOKEN })).status, 200);
    assert.deepEqual(await answering(10), ['backend_1', 'backend_2']);
  });

  test('add and remove servers; errors say why', async () => {
    const added = await admin(adminPort, 'POST', '/api/upstreams/app/servers', { token: TOKEN, json: { address: addr[2], weight: 2, max_fails: 2, fail_timeout: '5s' } });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.body.state.weight, 2);
    assert.equal(added.body.state.source, 'admin');
    assert.deepEqual(await answering(16), ['backend_1', 'backend_2', 'backend_3']);
    assert.equal((await admin(adminPort, 'POST', '/api/upstreams/app/servers', { token: TOKEN, json: { address: addr[2] } })).status, 409);
    const bad = await admin(adminPort, 'POST', '/api/upstreams/app/servers', { token: TOKEN, json: { address: addr[2], wieght: 1 } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /wieght/);
    assert.equal((await admin(adminPort, 'POST', '/api/upstreams/nope/servers', { token: TOKEN, json: { address: addr[2] } })).status, 404);

    const removed = await admin(adminPort, 'DELETE', server(0), { token: TOKEN });
    assert.equal(removed.status, 200, removed.text);
    assert.equal((await admin(adminPort, 'GET', server(0))).status, 404);
    assert.deepEqual(await answering(12), ['backend_2', 'backend_3']);
    assert.equal((await admin(adminPort, 'DELETE', server(0), { token: TOKEN })).status, 404);
  });

  test('changes are kept across a reload', async () => {
    assert.equal((await admin(adminPort, 'POST', `${server(1)}/drain`, { token: TOKEN })).status, 200);
    await fulcrum.reload();
    const servers = (await upstreamState(adminPort, 'app')).servers;
    assert.deepEqual(servers.map((s) => [s.address, s.state]), [
      [addr[1], 'draining'],
      [addr[2], 'up'],
    ]);
    assert.deepEqual(await answering(8), ['backend_3']);
    // Back to the config's servers.
    assert.equal((await admin(adminPort, 'POST', `${server(1)}/enable`, { token: TOKEN })).status, 200);
    assert.equal((await admin(adminPort, 'POST', '/api/upstreams/app/servers', { token: TOKEN, json: { address: addr[0] } })).status, 201);
    assert.equal((await admin(adminPort, 'DELETE', server(2), { token: TOKEN })).status, 200);
    assert.deepEqual(await answering(8), ['backend_1', 'backend_2']);
  });

  test('reload through the API: applied, or refused with the error and the old config kept', async () => {
    writeFileSync(fulcrum.configPath, configText('add_header X-Reloaded yes;'));
    const ok = await admin(adminPort, 'POST', '/api/reload', { token: TOKEN });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await request({ port, path: '/hello' })).headers['x-reloaded'], 'yes');

    writeFileSync(fulcrum.configPath, configText('add_header X-Broken;'));
    const broken = await admin(adminPort, 'POST', '/api/reload', { token: TOKEN });
    assert.equal(broken.status, 422);
    assert.match(broken.body.error, /fulcrum\.conf:\d+:\d+: invalid number of arguments in "add_header"/);
    assert.equal((await request({ port, path: '/hello' })).headers['x-reloaded'], 'yes', 'the running config is kept');
    writeFileSync(fulcrum.configPath, configText());
  });

  test('validate a config without applying it', async () => {
    const good = await admin(adminPort, 'POST', '/api/config/validate', { token: TOKEN, body: configText('add_header X-Candidate 1;'), contentType: 'text/plain' });
    assert.equal(good.status, 200, good.text);
    assert.deepEqual([good.body.valid, good.body.errors], [true, []]);
    const bad = await admin(adminPort, 'POST', '/api/config/validate', { token: TOKEN, body: 'http {\n  server { listen 8080; lcoation / { } }\n}\n', contentType: 'text/plain' });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.valid, false);
    assert.match(bad.body.errors[0], /fulcrum\.conf:2:\d+: unknown directive "lcoation"/);
    const yaml = await admin(adminPort, 'POST', '/api/config/validate', { token: TOKEN, json: { format: 'yaml', config: 'http:\n  servers:\n    - listen: [{ port: 8080 }]\n      return: { code: 204 }\n' } });
    assert.equal(yaml.status, 200, yaml.text);
    assert.equal((await admin(adminPort, 'POST', '/api/config/validate', { body: 'http {}' })).status, 401, 'validation needs the token too');
    assert.equal((await request({ port, path: '/hello' })).headers['x-candidate'], undefined, 'nothing was applied');
  });

  test('docs/admin-openapi.yaml documents every route, and is served at /openapi.yaml', async () => {
    const text = readFileSync(OPENAPI, 'utf8');
    const doc = parseYaml(text) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { securitySchemes: Record<string, unknown> } };
    assert.match(doc.openapi, /^3\./);
    const routes: [string, string][] = [
      ['get', '/api'],
      ['get', '/api/upstreams'],
      ['get', '/api/upstreams/{upstream}'],
      ['post', '/api/upstreams/{upstream}/servers'],
      ['get', '/api/upstreams/{upstream}/servers/{server}'],
      ['delete', '/api/upstreams/{upstream}/servers/{server}'],
      ['post', '/api/upstreams/{upstream}/servers/{server}/drain'],
      ['post', '/api/upstreams/{upstream}/servers/{server}/disable'],
      ['post', '/api/upstreams/{upstream}/servers/{server}/enable'],
      ['get', '/api/workers'],
      ['post', '/api/reload'],
      ['post', '/api/config/validate'],
      ['get', '/api/events'],
      ['get', '/metrics'],
      ['get', '/status'],
    ];
    for (const [method, path] of routes) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    assert.ok(doc.components.securitySchemes.bearer);
    assert.ok(text.includes('example'), 'with examples');
    const served = await admin(adminPort, 'GET', '/openapi.yaml');
    assert.equal(served.status, 200);
    assert.equal(served.text, text);
  });
});
