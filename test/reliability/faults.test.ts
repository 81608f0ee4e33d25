/**
 * Reliability, issue 3 "Faults (nothing lost)": backends that refuse, die
 * mid-response, hang, are blackholed, race a keep-alive close, all go down,
 * die after receiving a POST, or answer with invalid framing. Each case is a
 * real fulcrum process in front of real backend processes or scripted
 * raw-socket servers, driven by a raw-socket or node:http client on loopback.
 *
 * The 60 s chaos run is in test/soak/chaos.test.ts (npm run test:soak).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { readRequestHead, spawnBackends, startScriptedServer, type ScriptedServer } from '../support/backends.js';
import { request } from '../support/http-client.js';
import { freePort } from '../support/ports.js';
import { alive, createBlackhole, exchange, get, RawClient, startProxy } from '../support/reliability.js';
import { backendCount } from '../support/seed.js';
import { sleep } from '../support/wait.js';

const OK_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n';

/** Reads `n` body bytes that follow a head read by readRequestHead (the socket is left paused). */
function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (n === 0) return resolve(Buffer.alloc(0));
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < n) return;
      socket.off('data', onData);
      socket.pause();
      if (got.length > n) socket.unshift(got.subarray(n));
      resolve(got.subarray(0, n));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed while reading a body')));
    socket.resume();
  });
}

function contentLength(head: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m === null ? 0 : Number(m[1]);
}

function requestLine(head: string): string {
  return head.split('\r\n')[0]!;
}

/** Resolves once the peer closed `socket` (FIN or reset), with the time it took; undefined after `timeoutMs`. */
function closedByPeer(socket: net.Socket, timeoutMs: number): Promise<number | undefined> {
  const started = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    };
    if (socket.destroyed || socket.readableEnded) return done();
    socket.once('end', done);
    socket.once('close', done);
    socket.resume(); // read (and drop) anything, so the FIN is seen
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe('faults: a backend that refuses connections', () => {
  test('idempotent and non-idempotent requests go to another server; the client sees 200', async () => {
    const backends = await spawnBackends(2);
    const refusing = await freePort(); // nothing listens there: connect() gets ECONNREFUSED
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${refusing}; server 127.0.0.1:${backends.ports[0]}; server 127.0.0.1:${backends.ports[1]}; }`,
      server: 'location /api { proxy_pass http://u; debug_header on; }',
    });
    try {
      const results = [];
      for (let i = 0; i < 12; i++) {
        const method = i % 3 === 2 ? 'POST' : 'GET';
        const r = await request({ port: proxy.port, path: method === 'POST' ? '/api/echo' : '/api/hello', method, body: method === 'POST' ? 'payload' : undefined });
        results.push({ method, status: r.status, tried: String(r.headers['x-fulcrum-upstream'] ?? '') });
      }
      assert.deepEqual(results.filter((r) => r.status !== 200), [], JSON.stringify(results));
      // The refusing server was in the rotation and was tried (then skipped for fail_timeout).
      const viaRefused = results.filter((r) => r.tried.includes(`127.0.0.1:${refusing}`));
      assert.ok(viaRefused.length >= 1, `the refusing server was tried at least once: ${JSON.stringify(results)}`);
      for (const r of viaRefused) assert.match(r.tried, /, /, 'and the request went on to another server');
      // The POSTs went out exactly once each (connect failures are safe to retry: nothing was sent).
      const posts = (await backendCount(backends.ports[0]!, '/api/echo')) + (await backendCount(backends.ports[1]!, '/api/echo'));
      assert.equal(posts, results.filter((r) => r.method === 'POST').length);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('faults: a backend killed (SIGKILL) mid-response', () => {
  test('chunked: the client connection is closed without the last chunk, never a complete-looking body', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const client = await RawClient.connect(proxy.port);
      await client.write(get('/api/chunked?n=2000&size=100&interval=5'));
      assert.ok(await client.until(() => client.bytes > 3000, 5000), 'the body is streaming');
      await backends.kill(0);
      assert.ok(await client.waitForClose(5000), 'fulcrum closed the client connection after the backend died');
      const [res] = client.responses();
      assert.equal(res?.status, 200);
      assert.equal(res.chunked, true);
      assert.equal(res.complete, false, 'no last chunk: the truncation is visible');
      assert.ok(!client.text.includes('\r\n0\r\n\r\n'), 'fulcrum never wrote a last chunk');
      assert.ok(res.body.length < 2000 * 100);
      // The dead backend's connection was not kept: once it is back, requests work on new connections.
      await backends.restart(0);
      const next = await request({ port: proxy.port, path: '/api/hello' });
      assert.equal(next.status, 200);
      assert.equal(await backendCount(backends.ports[0]!, '/api/hello'), 1);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });

  test('Content-Length: the client connection is closed before the announced length, so the short body is visible', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const TOTAL = 1_000_000_000;
      const client = await RawClient.connect(proxy.port, { keepBytes: 4096 });
      await client.write(get(`/api/bytes?n=${TOTAL}`));
      assert.ok(await client.until(() => client.bytes > 1_000_000, 5000), 'the body is streaming');
      // Stop reading so the backend is mid-response (blocked on a full socket) when it dies.
      client.socket.pause();
      await sleep(100);
      await backends.kill(0);
      client.socket.resume();
      assert.ok(await client.waitForClose(10_000), 'fulcrum closed the client connection after the backend died');
      const head = client.text.slice(0, client.text.indexOf('\r\n\r\n') + 4);
      assert.match(head, /^HTTP\/1\.1 200 /);
      assert.match(head, new RegExp(`\\r\\nContent-Length: ${TOTAL}\\r\\n`, 'i'));
      assert.ok(client.bytes - head.length < TOTAL, `short body (${client.bytes} bytes) with the connection closed`);
      await backends.restart(0);
      assert.equal((await request({ port: proxy.port, path: '/api/hello' })).status, 200);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('faults: a backend that accepts but never answers', () => {
  test('504 at proxy_read_timeout (1s, and 2.5s on another location), the upstream socket closed', async () => {
    const sockets: net.Socket[] = [];
    const hang = await startScriptedServer(async (socket) => {
      sockets.push(socket);
      await readRequestHead(socket); // and never answer
    });
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${hang.port}; }`,
      server: [
        'location /a { proxy_pass http://u; proxy_read_timeout 1s; }',
        'location /b { proxy_pass http://u; proxy_read_timeout 2500ms; }',
      ].join('\n'),
    });
    try {
      const [a, b] = await Promise.all([RawClient.connect(proxy.port), RawClient.connect(proxy.port)]);
      await Promise.all([a.write(get('/a')), b.write(get('/b'))]);
      const answered = (c: RawClient) => c.until(() => c.responses()[0]?.complete === true, 6000);
      assert.ok(await answered(a), 'an answer for /a');
      assert.ok(await answered(b), 'an answer for /b');
      assert.equal(a.responses()[0]?.status, 504);
      assert.equal(b.responses()[0]?.status, 504);
      const aAt = a.firstByteAt! - a.openedAt;
      const bAt = b.firstByteAt! - b.openedAt;
      assert.ok(aAt >= 900 && aAt < 2000, `504 for /a after ${Math.round(aAt)} ms (proxy_read_timeout 1s)`);
      assert.ok(bAt >= 2400 && bAt < 3600, `504 for /b after ${Math.round(bAt)} ms (proxy_read_timeout 2500ms)`);
      a.destroy();
      b.destroy();
      assert.equal(sockets.length, 2, 'one upstream connection per request');
      for (const s of sockets) assert.notEqual(await closedByPeer(s, 1000), undefined, 'fulcrum closed the timed-out upstream connection');
    } finally {
      await proxy.stop();
      await hang.close();
    }
  });

  test('a backend that stalls mid-body: the client connection is cut at proxy_read_timeout; the upstream socket is not reused', async () => {
    const conns: Array<{ socket: net.Socket; requests: string[] }> = [];
    const server = await startScriptedServer(async (socket) => {
      const conn = { socket, requests: [] as string[] };
      conns.push(conn);
      for (;;) {
        const head = await readRequestHead(socket);
        conn.requests.push(requestLine(head));
        if (head.startsWith('GET /stall')) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(100));
          return; // and never the rest
        }
        socket.write(OK_RESPONSE);
      }
    });
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${server.port}; }`,
      server: 'location / { proxy_pass http://u; proxy_read_timeout 1s; }',
    });
    try {
      assert.equal((await exchange(proxy.port, get('/ok'))).responses[0]?.status, 200);
      const client = await RawClient.connect(proxy.port);
      await client.write(get('/stall'));
      assert.ok(await client.until(() => client.bytes > 100, 3000));
      const headAt = performance.now();
      assert.ok(await client.waitForClose(4000), 'the client connection was cut');
      const cutAfter = client.closedAt! - headAt;
      assert.ok(cutAfter > 800 && cutAfter < 2200, `cut ${Math.round(cutAfter)} ms after the stall (proxy_read_timeout 1s)`);
      const [res] = client.responses();
      assert.equal(res?.status, 200);
      assert.equal(res.complete, false, 'the short body is visible as short');
      const stalled = conns.find((c) => c.requests.includes('GET /stall HTTP/1.1'))!;
      assert.notEqual(await closedByPeer(stalled.socket, 1000), undefined, 'fulcrum closed the stalled upstream connection');
      assert.equal((await exchange(proxy.port, get('/ok'))).responses[0]?.status, 200);
      assert.deepEqual(stalled.requests.slice(stalled.requests.indexOf('GET /stall HTTP/1.1') + 1), [], 'nothing was sent on it after the stall');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });

  test('a blackholed backend (network namespace + iptables DROP): 504/502 at proxy_connect_timeout; traffic resumes when the rule goes', async (t) => {
    const hole = createBlackhole();
    if (typeof hole === 'string') {
      t.skip(`blackholed upstream not testable here: ${hole}`);
      return;
    }
    let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
    try {
      await hole.startBackend(8080, 'ns_backend');
      proxy = await startProxy({
        http: `upstream u { server ${hole.address}:8080; }`,
        // HTTP/1.0 upstream: no pooled connection, so every request has to connect.
        server: 'location /api { proxy_pass http://u; proxy_connect_timeout 1s; proxy_read_timeout 10s; proxy_http_version 1.0; }',
      });
      const before = await request({ port: proxy.port, path: '/api/hello', timeoutMs: 5000 });
      assert.equal(before.status, 200, 'the namespace backend answers before the DROP rule');
      assert.equal(before.headers['x-backend'], 'ns_backend');

      hole.drop(true);
      const { value, ms } = await timed(() => request({ port: proxy!.port, path: '/api/hello', timeoutMs: 10_000 }));
      assert.ok(value.status === 504 || value.status === 502, `status ${value.status}`);
      assert.ok(ms >= 900 && ms < 2500, `answered after ${Math.round(ms)} ms (proxy_connect_timeout 1s)`);
      t.diagnostic(`blackholed: ${value.status} after ${Math.round(ms)} ms`);

      hole.drop(false);
      const after = await request({ port: proxy.port, path: '/api/hello', timeoutMs: 5000 });
      assert.equal(after.status, 200, 'the only server of the group is never taken out: it serves as soon as the rule is gone');
    } finally {
      await proxy?.stop();
      await hole.destroy();
    }
  });
});

/**
 * A scripted keep-alive backend: answers the first request of each connection
 * with 200 (keep-alive), and closes a connection when a second request
 * arrives on it without answering, which is the race exactly: the backend
 * closing an idle connection as fulcrum reuses it.
 */
async function raceServer(closeWith: 'fin' | 'reset'): Promise<{ server: ScriptedServer; seen: Array<{ conn: number; line: string }> }> {
  const seen: Array<{ conn: number; line: string }> = [];
  let conns = 0;
  const server = await startScriptedServer(async (socket) => {
    const conn = ++conns;
    const first = await readRequestHead(socket);
    seen.push({ conn, line: requestLine(first) });
    await readBytes(socket, contentLength(first));
    socket.write(OK_RESPONSE);
    const second = await readRequestHead(socket);
    seen.push({ conn, line: requestLine(second) });
    if (closeWith === 'fin') socket.end();
    else socket.resetAndDestroy();
  });
  return { server, seen };
}

describe('faults: the keep-alive race (backend closes an idle connection as fulcrum reuses it)', () => {
  for (const closeWith of ['fin', 'reset'] as const) {
    test(`closed with ${closeWith === 'fin' ? 'a FIN' : 'a reset'}: a GET is retried transparently on a fresh connection; a POST is not replayed (502)`, async () => {
      const { server, seen } = await raceServer(closeWith);
      const proxy = await startProxy({
        http: `upstream u { server 127.0.0.1:${server.port}; }`,
        server: 'location / { proxy_pass http://u; }',
      });
      try {
        assert.equal((await exchange(proxy.port, get('/warm'))).responses[0]?.status, 200);
        const r = await exchange(proxy.port, get('/get-after-race'), { timeoutMs: 1000 });
        assert.equal(r.responses[0]?.status, 200, 'the GET that hit the race got 200');
        assert.deepEqual(seen.map((s) => `${s.conn} ${s.line}`), [
          '1 GET /warm HTTP/1.1',
          '1 GET /get-after-race HTTP/1.1', // the reused connection: closed under it
          '2 GET /get-after-race HTTP/1.1', // resent once, on a fresh connection
        ]);

        // Connection 2 is now pooled; a POST reusing it meets the same close.
        const post = await exchange(proxy.port, 'POST /post-after-race HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', { timeoutMs: 1000 });
        assert.equal(post.responses[0]?.status, 502, 'the POST is answered 502');
        await sleep(200);
        assert.equal(seen.filter((s) => s.line.startsWith('POST')).length, 1, `the POST reached the backend once, never replayed: ${JSON.stringify(seen)}`);
        assert.equal(server.connections, 2, 'no fresh connection was opened for the POST');
      } finally {
        await proxy.stop();
        await server.close();
      }
    });
  }

  test('fulcrum honours the backend\'s Keep-Alive: timeout hint (minus 1 s): an idle connection is not reused past it', async () => {
    const requestsPerConn: number[] = [];
    const server = await startScriptedServer(async (socket) => {
      const conn = requestsPerConn.push(0) - 1;
      let idleTimer: NodeJS.Timeout | undefined;
      socket.once('close', () => clearTimeout(idleTimer));
      for (;;) {
        const head = await readRequestHead(socket);
        clearTimeout(idleTimer);
        requestsPerConn[conn]!++;
        await readBytes(socket, contentLength(head));
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=2\r\n\r\nok\n');
        // As Node does: an idle connection is closed after the advertised timeout.
        idleTimer = setTimeout(() => socket.end(), 2000);
      }
    });
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${server.port}; }`,
      server: 'location / { proxy_pass http://u; }',
    });
    try {
      const post = (path: string) => exchange(proxy.port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`);
      assert.equal((await post('/1')).responses[0]?.status, 200);
      await sleep(300);
      assert.equal((await post('/2')).responses[0]?.status, 200);
      assert.deepEqual(requestsPerConn, [2], 'within the hint, the connection is reused');
      await sleep(1300); // past timeout=2 minus the 1 s margin, before the backend's own close
      assert.equal((await post('/3')).responses[0]?.status, 200);
      assert.deepEqual(requestsPerConn, [2, 1], 'after 1.3 s idle (hint 2 s - 1 s), a fresh connection is used');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });
});

describe('faults: all backends down', () => {
  test('502 quickly while fulcrum stays healthy; when they come back, traffic resumes without a reload', async (t) => {
    const backends = await spawnBackends(2);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]} max_fails=1 fail_timeout=2s; server 127.0.0.1:${backends.ports[1]} max_fails=1 fail_timeout=2s; }`,
      server: ['location = /health { return 200 "healthy\\n"; }', 'location /api { proxy_pass http://u; }'].join('\n'),
    });
    try {
      assert.equal((await request({ port: proxy.port, path: '/api/hello' })).status, 200);
      await backends.kill(0);
      await backends.kill(1);
      const down = [];
      for (let i = 0; i < 10; i++) down.push(await timed(() => request({ port: proxy.port, path: '/api/hello', timeoutMs: 5000 })));
      assert.deepEqual(down.map((d) => d.value.status), Array(10).fill(502));
      const slowest = Math.max(...down.map((d) => d.ms));
      assert.ok(slowest < 500, `every 502 within 500 ms (slowest ${Math.round(slowest)} ms)`);
      assert.equal((await request({ port: proxy.port, path: '/health' })).status, 200, 'fulcrum itself still answers');
      assert.ok(alive(proxy.fulcrum.pid));

      await Promise.all([backends.restart(0), backends.restart(1)]);
      const back = performance.now();
      let firstOk = -1;
      for (let i = 0; i < 60 && firstOk < 0; i++) {
        const r = await request({ port: proxy.port, path: '/api/hello', timeoutMs: 5000 });
        if (r.status === 200) firstOk = performance.now() - back;
        else await sleep(100);
      }
      assert.ok(firstOk >= 0 && firstOk < 3500, `traffic resumed ${Math.round(firstOk)} ms after the backends came back (fail_timeout 2s)`);
      const after = await Promise.all(Array.from({ length: 10 }, () => request({ port: proxy.port, path: '/api/hello' })));
      assert.deepEqual(after.map((r) => r.status), Array(10).fill(200));
      assert.equal(proxy.fulcrum.logs.filter((e) => e.msg === 'reloaded').length, 0, 'no reload was involved');
      t.diagnostic(`resumed after ${Math.round(firstOk)} ms`);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});

/** Two scripted backends that take a POST (head and body) and then die in the given way; every request line seen is recorded. */
async function dyingPostServers(how: 'fin' | 'reset' | 'partial-head'): Promise<{ servers: ScriptedServer[]; seen: string[] }> {
  const seen: string[] = [];
  const handler = async (socket: net.Socket) => {
    const head = await readRequestHead(socket);
    seen.push(requestLine(head));
    await readBytes(socket, contentLength(head));
    if (how === 'fin') socket.end();
    else if (how === 'reset') socket.resetAndDestroy();
    else socket.end('HTTP/1.1 200 OK\r\nContent-Le');
  };
  const servers = [await startScriptedServer(handler), await startScriptedServer(handler)];
  return { servers, seen };
}

describe('faults: a POST whose backend dies after receiving it is never sent twice', () => {
  for (const how of ['fin', 'reset', 'partial-head'] as const) {
    test(`backend ${how === 'fin' ? 'closes' : how === 'reset' ? 'resets' : 'sends half a head and closes'}: 502, the POST counted once (control: non_idempotent sends it twice)`, async () => {
      const { servers, seen } = await dyingPostServers(how);
      const proxy = await startProxy({
        http: `upstream u { server 127.0.0.1:${servers[0]!.port} max_fails=0; server 127.0.0.1:${servers[1]!.port} max_fails=0; }`,
        server: [
          'location /default { proxy_pass http://u; }',
          // The control: with non_idempotent, nginx (and fulcrum) may resend a POST, and the count shows it.
          'location /control { proxy_pass http://u; proxy_next_upstream error timeout non_idempotent; }',
        ].join('\n'),
      });
      try {
        const r = await exchange(proxy.port, 'POST /default HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npayload', { timeoutMs: 1000 });
        assert.equal(r.responses[0]?.status, 502);
        assert.deepEqual(seen, ['POST /default HTTP/1.1'], 'the POST reached one backend, once');

        const control = await exchange(proxy.port, 'POST /control HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npayload', { timeoutMs: 1000 });
        assert.equal(control.responses[0]?.status, 502);
        assert.equal(seen.filter((s) => s.startsWith('POST /control')).length, 2, 'with non_idempotent the count does see a resend');
      } finally {
        await proxy.stop();
        for (const s of servers) await s.close();
      }
    });
  }

  test('a real backend process that crashes on the POST: 502, and the other backend never saw it', async () => {
    const backends = await spawnBackends(2);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; server 127.0.0.1:${backends.ports[1]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const r = await request({ port: proxy.port, path: '/api/crash', method: 'POST', body: 'payload', timeoutMs: 5000 });
      assert.equal(r.status, 502);
      await sleep(100);
      const survivors = [0, 1].filter((i) => backends.pid(i) !== undefined);
      assert.equal(survivors.length, 1, 'exactly one backend got it (and crashed)');
      assert.equal(await backendCount(backends.ports[survivors[0]!]!, '/api/crash'), 0);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('faults: invalid upstream framing is a 502 and the socket is discarded', () => {
  const cases: Array<{ name: string; response: string }> = [
    { name: 'Content-Length with Transfer-Encoding', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
    { name: 'Transfer-Encoding with Content-Length', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
    { name: 'duplicate Content-Length (equal)', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello' },
    { name: 'duplicate Content-Length (different)', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!' },
    { name: 'Content-Length: 5, 5', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello' },
    { name: 'Content-Length: +5', response: 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello' },
    { name: 'Transfer-Encoding: chunked, chunked', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
    { name: 'Transfer-Encoding twice', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
    { name: 'Transfer-Encoding: gzip, chunked', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
    { name: '204 with Content-Length and a body', response: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello' },
    { name: '204 with chunked framing', response: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' },
    { name: '204 followed by body bytes', response: 'HTTP/1.1 204 No Content\r\n\r\nhello' },
    { name: 'obs-fold in a header', response: 'HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 5\r\n\r\nhello' },
    { name: 'bare LF line ending', response: 'HTTP/1.1 200 OK\nContent-Length: 5\r\n\r\nhello' },
    { name: 'NUL in a header value', response: 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello' },
    { name: 'status 99', response: 'HTTP/1.1 099 Odd\r\nContent-Length: 5\r\n\r\nhello' },
  ];

  test(`${cases.length} invalid responses: each a 502, its upstream connection closed by fulcrum and never used again`, async (t) => {
    interface Conn { socket: net.Socket; lines: string[] }
    const conns: Conn[] = [];
    const server = await startScriptedServer(async (socket) => {
      const conn: Conn = { socket, lines: [] };
      conns.push(conn);
      for (;;) {
        const head = await readRequestHead(socket);
        const line = requestLine(head);
        conn.lines.push(line);
        const m = /^GET \/bad\/(\d+) /.exec(line);
        if (m === null) {
          socket.write(OK_RESPONSE);
          continue;
        }
        socket.write(cases[Number(m[1])]!.response);
        return; // whatever fulcrum does next, this server sends nothing more on it
      }
    });
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${server.port}; }`,
      server: 'location / { proxy_pass http://u; }',
    });
    const failures: string[] = [];
    try {
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i]!;
        // A pooled connection first (the usual case), then the invalid response on it.
        assert.equal((await exchange(proxy.port, get('/ok'))).responses[0]?.status, 200);
        const r = await exchange(proxy.port, get(`/bad/${i}`), { timeoutMs: 500 });
        const status = r.responses[0]?.status;
        const badConn = conns.find((conn) => conn.lines.some((l) => l.startsWith(`GET /bad/${i} `)));
        const closedAfter = badConn === undefined ? undefined : await closedByPeer(badConn.socket, 1000);
        const next = await exchange(proxy.port, get('/ok'));
        const reused = badConn !== undefined && badConn.lines.length > badConn.lines.findIndex((l) => l.startsWith(`GET /bad/${i} `)) + 1;
        if (status !== 502) failures.push(`${c.name}: status ${status ?? 'none'} (wanted 502): ${JSON.stringify(r.data.toString('latin1').slice(0, 80))}`);
        if (closedAfter === undefined) failures.push(`${c.name}: the upstream connection was not closed`);
        if (next.responses[0]?.status !== 200) failures.push(`${c.name}: the next request got ${next.responses[0]?.status}`);
        if (reused) failures.push(`${c.name}: the connection was used again`);
      }
      assert.deepEqual(failures, []);
      t.diagnostic(`${conns.length} upstream connections for ${cases.length} invalid responses`);
      assert.equal(proxy.fulcrum.exit, undefined, 'fulcrum is still running');
    } finally {
      await proxy.stop();
      await server.close();
    }
  });
});
