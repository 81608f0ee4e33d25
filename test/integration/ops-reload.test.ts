/**
 * Reload and shutdown without losing a request (issue 6):
 *
 * - 20 reloads during sustained load with worker_processes 2, through all
 *   three triggers (SIGHUP, the admin API, a changed config file with
 *   `watch_config on`): keep-alive and new connections, GET and POST, and one
 *   long stream spanning every reload; zero failed requests, and the stream
 *   arrives whole. Then a graceful stop with a request in flight.
 * - Long streams and WebSockets on routes a reload keeps are left alone; a
 *   stream to a server the reload removed gets worker_shutdown_timeout;
 *   `reload_stream_timeout` caps even the kept ones.
 * - Live server state (counters, passive health) survives a reload.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { makeSelfSignedCert } from '../support/certs.js';
import { tempDir } from '../support/tmp.js';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { admin, upstreamState } from '../support/admin.js';
import { startFulcrum } from '../support/fulcrum.js';
import { keepAliveAgent, request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { openSse, openWebSocket } from '../support/streams.js';
import { sleep, waitUntil } from '../support/wait.js';

const TOKEN = 'reload-test-token';
let backends: TestBackends;

before(async () => {
  backends = await spawnBackends(3);
});

after(async () => {
  await backends?.stop();
});

interface Failure {
  client: string;
  error: string;
}

describe('reload under sustained load (worker_processes 2)', () => {
  test('20 reloads (SIGHUP, admin API, config watch): no failed request, the long stream arrives whole, then a graceful stop', async (t) => {
    const [port, adminPort] = await freePorts(2);
    const config = (round: number): string => `
worker_processes 2;
worker_shutdown_timeout 10s;
watch_config on;
admin { listen 127.0.0.1:${adminPort}; token ${TOKEN}; }
http {
  access_log off;
  upstream app {
    server 127.0.0.1:${backends.ports[0]} max_fails=0;
    server 127.0.0.1:${backends.ports[1]} max_fails=0;
    server 127.0.0.1:${backends.ports[2]} max_fails=0;
    keepalive ${16 + (round % 4)};
  }
  server {
    listen 127.0.0.1:${port};
    add_header X-Config round-${round} always;
    location /api { proxy_pass http://app; proxy_read_timeout 30s; }
  }
}
`;
    const fulcrum = await startFulcrum({ config: config(0) });
    const failures: Failure[] = [];
    let requests = 0;
    let running = true;
    const lastConfig: string[] = [];
    const loop = async (client: string, once: () => Promise<void>): Promise<void> => {
      while (running) {
        try {
          await once();
          requests++;
        } catch (err) {
          failures.push({ client, error: (err as Error).message });
        }
      }
    };
    const get = (agent: ReturnType<typeof keepAliveAgent> | false) => async () => {
      const r = await request({ port, path: '/api/hello', agent, timeoutMs: 10_000 });
      if (r.status !== 200 || !r.body.toString().startsWith('Hello from')) throw new Error(`GET status ${r.status}`);
      lastConfig.push(String(r.headers['x-config']));
    };
    const post = (agent: ReturnType<typeof keepAliveAgent> | false, size: number) => async () => {
      const body = randomBytes(size);
      const r = await request({ port, method: 'POST', path: '/api/echo', agent, body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, timeoutMs: 10_000 });
      if (r.status !== 200) throw new Error(`POST status ${r.status}`);
      const echo = JSON.parse(r.body.toString()) as { bytes: number; sha256: string };
      if (echo.bytes !== size || echo.sha256 !== createHash('sha256').update(body).digest('hex')) throw new Error('POST body changed on the way');
    };
    const agents = [0, 1, 2, 3].map(() => keepAliveAgent({ maxSockets: 1 }));
    const stream = await openSse(port, '/api/stream?n=120&interval=75');
    const clients = [
      loop('keep-alive GET 1', get(agents[0]!)),
      loop('keep-alive GET 2', get(agents[1]!)),
      loop('new-connection GET', get(false)),
      loop('keep-alive POST 64k', post(agents[2]!, 64 * 1024)),
      loop('new-connection POST 2k', post(false, 2048)),
      loop('keep-alive POST 300k', post(agents[3]!, 300 * 1024)),
    ];
    const kinds: string[] = [];
    try {
      await sleep(300);
      for (let round = 1; round <= 20; round++) {
        const kind = ['api', 'sighup', 'watch'][round % 3]!;
        kinds.push(kind);
        const from = fulcrum.logs.length;
        if (kind === 'api') {
          const r = await admin(adminPort, 'POST', '/api/reload', { token: TOKEN });
          assert.equal(r.status, 200, r.text);
        } else if (kind === 'sighup') {
          await fulcrum.reload();
        } else {
          writeFileSync(fulcrum.configPath, config(round));
        }
        await fulcrum.waitForLog((e) => e.msg === 'reloaded' || e.msg === 'reload failed', 10_000, from);
        await sleep(120);
      }
      const end = await stream.done;
      assert.equal(end.complete, true, `the long stream ended cleanly (${end.error ?? ''})`);
      assert.equal(stream.events.length, 120, 'every event of the long stream arrived');
      assert.deepEqual(stream.events.map((e) => Number(e.split(' ')[0])), Array.from({ length: 120 }, (_, i) => i), 'in order');
    } finally {
      running = false;
      await Promise.all(clients);
      for (const a of agents) a.destroy();
    }

    assert.deepEqual(failures, [], `${failures.length} failed requests of ${requests + failures.length}`);
    assert.ok(requests > 400, `${requests} requests`);
    const reloads = fulcrum.logs.filter((e) => e.msg === 'reloaded' || e.msg === 'reload failed').map((e) => e.msg);
    assert.deepEqual(reloads, Array(20).fill('reloaded'), 'one reload per round, all successful');
    assert.equal(lastConfig.at(-1), 'round-20', 'the last config (applied by the file watch) is served');
    const metrics = (await admin(adminPort, 'GET', '/metrics')).text;
    assert.match(metrics, /^fulcrum_config_reloads_total\{result="success"\} 20$/m);
    t.diagnostic(`${requests} requests over 20 reloads (${kinds.join(' ')}), ${stream.events.length} stream events`);

    // Graceful stop: a request in flight finishes, then the process exits 0.
    const slow = request({ port, path: '/api/slow?ms=800', timeoutMs: 10_000 });
    await sleep(200);
    const code = fulcrum.stop('SIGTERM');
    const r = await slow;
    assert.equal(r.status, 200, 'the request in flight at SIGTERM completed');
    assert.equal(await code, 0);
  });
});

describe('idle keep-alive connections across a reload', () => {
  test('HTTP/1.1: Connection: close on the next response (not closed under the client); HTTP/2: GOAWAY', async () => {
    const [port, tlsPort] = await freePorts(2);
    const dir = tempDir('fulcrum-reload-h2-');
    const cert = makeSelfSignedCert(dir);
    const config = `
http {
  access_log off;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${cert.certPath};
    ssl_certificate_key ${cert.keyPath};
    location / { proxy_pass http://app; }
  }
}
`;
    const fulcrum = await startFulcrum({ config, dir });
    try {
      const socket = net.connect({ host: '127.0.0.1', port });
      await new Promise((r) => socket.once('connect', r));
      let received = '';
      let closed = false;
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
      socket.on('close', () => (closed = true));
      socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitUntil(() => received.includes('Hello from'), { description: 'the first response' });
      assert.match(received, /Connection: keep-alive/i);
      const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { ca: cert.cert, servername: 'localhost' });
      const goaway = new Promise<void>((r) => session.once('goaway', () => r()));
      await new Promise<void>((resolve, reject) => {
        const req = session.request({ ':path': '/hello' });
        req.on('response', () => undefined).on('data', () => undefined).on('end', resolve).on('error', reject);
        req.end();
      });
      await fulcrum.reload();
      await goaway;
      // The idle HTTP/1.1 connection is still open; its next response says Connection: close, then it closes.
      received = '';
      socket.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitUntil(() => received.includes('Hello from'), { description: 'the response after the reload' });
      assert.match(received, /^HTTP\/1\.1 200/);
      assert.match(received, /Connection: close/i);
      await waitUntil(() => closed, { description: 'the client connection closed after that response' });
      session.close();
    } finally {
      await fulcrum.stop();
    }
  });
});

describe('streams and WebSockets across a reload (one process)', () => {
  test('kept route: left alone; removed server: closed after worker_shutdown_timeout; live state survives', async () => {
    const [port, adminPort] = await freePorts(2);
    const config = (second: number): string => `
worker_shutdown_timeout 1s;
admin { listen 127.0.0.1:${adminPort}; token ${TOKEN}; }
http {
  access_log off;
  upstream kept { server 127.0.0.1:${backends.ports[0]}; }
  upstream moved { server 127.0.0.1:${backends.ports[second]}; }
  server {
    listen 127.0.0.1:${port};
    location /kept/ { proxy_pass http://kept/; proxy_read_timeout 30s; }
    location /moved/ { proxy_pass http://moved/; proxy_read_timeout 30s; }
  }
}
`;
    const fulcrum = await startFulcrum({ config: config(1) });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await request({ port, path: '/kept/hello' })).status, 200);
      const before = (await upstreamState(adminPort, 'kept')).servers[0];
      const kept = await openSse(port, '/kept/stream?n=40&interval=100');
      const moved = await openSse(port, '/moved/stream?n=40&interval=100');
      const ws = await openWebSocket(port, '/kept/ws');
      assert.equal(await ws.echo('before'), 'before');
      await sleep(300);
      const reloadedAt = performance.now();
      await fulcrum.reload(config(2));
      // The server behind /moved/ left the configuration: its stream has worker_shutdown_timeout (1 s) to finish.
      const movedEnd = await moved.done;
      const cutAfter = performance.now() - reloadedAt;
      assert.equal(movedEnd.complete, false, 'the stream to the removed server was cut');
      assert.ok(cutAfter > 800 && cutAfter < 3000, `cut ${Math.round(cutAfter)} ms after the reload`);
      // The kept route: the stream and the WebSocket go on.
      assert.equal(await ws.echo('after'), 'after', 'the WebSocket on the kept route still works');
      const keptEnd = await kept.done;
      assert.equal(keptEnd.complete, true, 'the stream on the kept route finished');
      assert.equal(kept.events.length, 40);
      assert.equal(ws.isClosed, false);
      ws.close();
      // Live state survived: the counters went on from where they were.
      const afterReload = (await upstreamState(adminPort, 'kept')).servers[0];
      assert.ok(afterReload.requests >= before.requests + 2, `requests ${before.requests} -> ${afterReload.requests}`);
    } finally {
      await fulcrum.stop();
    }
  });

  test('reload_stream_timeout closes streams and WebSockets on kept routes that long after a reload', async () => {
    const [port] = await freePorts(1);
    const config = (header: string): string => `
reload_stream_timeout 1s;
http {
  access_log off;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server {
    listen 127.0.0.1:${port};
    add_header X-Gen ${header};
    location / { proxy_pass http://app; proxy_read_timeout 30s; }
  }
}
`;
    const fulcrum = await startFulcrum({ config: config('a') });
    try {
      const stream = await openSse(port, '/stream?n=100&interval=100');
      const ws = await openWebSocket(port, '/ws');
      await sleep(200);
      const at = performance.now();
      await fulcrum.reload(config('b'));
      assert.equal(await ws.echo('still here'), 'still here', 'not closed by the reload itself');
      const end = await stream.done;
      const after = performance.now() - at;
      await waitUntil(() => ws.isClosed, { timeoutMs: 3000, description: 'the WebSocket closed' });
      assert.equal(end.complete, false);
      assert.ok(after > 800 && after < 3000, `closed ${Math.round(after)} ms after the reload`);
      assert.ok(stream.events.length < 100);
      // New requests are not affected.
      assert.equal((await request({ port, path: '/hello' })).headers['x-gen'], 'b');
    } finally {
      await fulcrum.stop();
    }
  });
});
