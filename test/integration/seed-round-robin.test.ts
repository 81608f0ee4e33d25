/**
 * The seed's 443 server: `location /api { proxy_pass http://backend_servers; ... }`
 * with three equal servers (round robin, nginx's default), and the four
 * forwarding headers it sets:
 *
 *   proxy_set_header Host $host;
 *   proxy_set_header X-Real-IP $remote_addr;
 *   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
 *   proxy_set_header X-Forwarded-Proto $scheme;
 *
 * Hop-by-hop headers (RFC 9110 7.6.1) never reach a backend, and the request
 * framing is rebuilt: a backend sees exactly one framing header. HTTP/2
 * clients (fulcrum offers h2 on TLS; the seed's nginx would not) get the same.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { headerValues } from '../support/backends.js';
import { keepAliveAgent, rawRequest, request, type HttpResponse } from '../support/http-client.js';
import { SEED_SERVER_NAME, backendCount, startSeed, type SeedEnv } from '../support/seed.js';

let env: SeedEnv;

before(async () => {
  env = await startSeed();
});

after(async () => {
  await env?.stop();
});

type Pairs = Array<[string, string]>;
interface Whoami { name: string; method: string; url: string; headers: Pairs }
interface Echo { name: string; bytes: number; sha256: string; headers: Pairs }

function backendOf(r: HttpResponse): string {
  assert.equal(r.status, 200, r.body.toString());
  const name = r.headers['x-backend'];
  assert.equal(typeof name, 'string');
  return name as string;
}

/** Each name is followed by the next one in backend_1 -> backend_2 -> backend_3 -> backend_1 order. */
function assertRotation(names: string[], what: string): void {
  const order = ['backend_1', 'backend_2', 'backend_3'];
  for (let i = 1; i < names.length; i++) {
    const expected = order[(order.indexOf(names[i - 1]!) + 1) % 3];
    assert.equal(names[i], expected, `${what}: ${names.join(' ')}`);
  }
}

/** Sends raw bytes over TLS to the 443 server and returns the one response (the request must say Connection: close). */
async function rawTls(bytes: string): Promise<{ status: number; body: Buffer }> {
  const exchange = await rawRequest(env.httpsPort, bytes, { tls: env.tls, timeoutMs: 3000 });
  const response = exchange.responses[0];
  assert.ok(response, `no response: ${JSON.stringify(exchange.data.toString('latin1').slice(0, 300))} ${exchange.errorCode ?? ''}`);
  return { status: response.status, body: response.body };
}

describe('seed 443: round robin over the three backends', () => {
  test('sequential requests to /api/hello go backend_1, backend_2, backend_3 in turn', async () => {
    const names: string[] = [];
    for (let i = 0; i < 9; i++) names.push(backendOf(await env.https('/api/hello')));
    assert.equal(names[0], 'backend_1', 'the first request of a fresh fulcrum goes to the first server');
    assertRotation(names, 'new connection per request');
    const agent = keepAliveAgent({ tls: true, maxSockets: 1 });
    try {
      const kept: string[] = [];
      for (let i = 0; i < 9; i++) kept.push(backendOf(await env.https('/api/hello', { agent })));
      assertRotation(kept, 'one keep-alive connection');
      assert.equal(kept[0], 'backend_1', 'the rotation continues where it was');
    } finally {
      agent.destroy();
    }
    const body = (await env.https('/api/hello')).body.toString();
    assert.equal(body, 'Hello from backend_1\n');
  });

  test('30 concurrent requests: exactly 10 per backend', async () => {
    const agent = keepAliveAgent({ tls: true, maxSockets: 10 });
    try {
      const names = await Promise.all(Array.from({ length: 30 }, () => env.https('/api/hello', { agent }).then(backendOf)));
      const counts = Object.fromEntries(['backend_1', 'backend_2', 'backend_3'].map((n) => [n, names.filter((x) => x === n).length]));
      assert.deepEqual(counts, { backend_1: 10, backend_2: 10, backend_3: 10 });
    } finally {
      agent.destroy();
    }
  });
});

describe('seed 443: forwarding headers', () => {
  test('Host is the client\'s host ($host), X-Real-IP and X-Forwarded-For the client address, X-Forwarded-Proto https', async () => {
    const r = await env.https('/api/whoami?q=1', { headers: { host: SEED_SERVER_NAME } });
    const who = JSON.parse(r.body.toString()) as Whoami;
    assert.equal(who.url, '/api/whoami?q=1', 'the URI is passed unchanged');
    assert.deepEqual(headerValues(who.headers, 'host'), [SEED_SERVER_NAME]);
    assert.deepEqual(headerValues(who.headers, 'x-real-ip'), ['127.0.0.1']);
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-proto'), ['https']);
  });

  test('$host drops the port and lower-cases: Host: BLARYBUS...:443 arrives as blarybus...', async () => {
    const r = await env.https('/api/whoami', { headers: { host: `${SEED_SERVER_NAME.toUpperCase()}:${env.httpsPort}` } });
    const who = JSON.parse(r.body.toString()) as Whoami;
    assert.deepEqual(headerValues(who.headers, 'host'), [SEED_SERVER_NAME]);
  });

  test('X-Forwarded-For is appended to the incoming one; client X-Real-IP and X-Forwarded-Proto are replaced, not added', async () => {
    const r = await env.https('/api/whoami', {
      headers: {
        host: SEED_SERVER_NAME,
        'x-forwarded-for': '203.0.113.7, 198.51.100.2',
        'x-real-ip': '10.9.9.9',
        'x-forwarded-proto': 'http',
      },
    });
    const who = JSON.parse(r.body.toString()) as Whoami;
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-for'), ['203.0.113.7, 198.51.100.2, 127.0.0.1']);
    assert.deepEqual(headerValues(who.headers, 'x-real-ip'), ['127.0.0.1']);
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(headerValues(who.headers, 'host'), [SEED_SERVER_NAME]);
  });

  test('two incoming X-Forwarded-For fields are joined before the client address is appended', async () => {
    const r = await rawTls([
      'GET /api/whoami HTTP/1.1',
      `Host: ${SEED_SERVER_NAME}`,
      'X-Forwarded-For: 203.0.113.7',
      'X-Forwarded-For: 198.51.100.2',
      'Connection: close',
      '',
      '',
    ].join('\r\n'));
    assert.equal(r.status, 200);
    const who = JSON.parse(r.body.toString()) as Whoami;
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-for'), ['203.0.113.7, 198.51.100.2, 127.0.0.1']);
  });

  test('hop-by-hop headers from the client do not reach the backend; end-to-end ones do', async () => {
    const lines = [
      'GET /api/whoami HTTP/1.1',
      `Host: ${SEED_SERVER_NAME}`,
      'Connection: close, foo, X-Hop-Custom',
      'foo: bar',
      'X-Hop-Custom: 1',
      'Keep-Alive: timeout=5, max=100',
      'TE: trailers',
      'Proxy-Connection: keep-alive',
      'Upgrade: websocket',
      'X-End-To-End: kept',
      'Accept: text/plain',
      '',
      '',
    ];
    // Control: sent straight to a backend, every one of these headers arrives (so their absence below is fulcrum's doing).
    const direct = await rawRequest(env.backends.ports[0]!, lines.join('\r\n'), { timeoutMs: 3000 });
    const directNames = (JSON.parse(direct.responses[0]!.body.toString()) as Whoami).headers.map(([name]) => name.toLowerCase());
    for (const hop of ['foo', 'x-hop-custom', 'keep-alive', 'te', 'proxy-connection', 'upgrade']) assert.ok(directNames.includes(hop), `control: ${hop}`);

    const r = await rawTls(lines.join('\r\n'));
    assert.equal(r.status, 200, r.body.toString());
    const who = JSON.parse(r.body.toString()) as Whoami;
    const names = who.headers.map(([name]) => name.toLowerCase());
    for (const hop of ['foo', 'x-hop-custom', 'keep-alive', 'te', 'proxy-connection', 'upgrade']) {
      assert.ok(!names.includes(hop), `${hop} reached the backend: ${JSON.stringify(who.headers)}`);
    }
    for (const value of headerValues(who.headers, 'connection')) {
      assert.doesNotMatch(value, /foo|x-hop-custom|upgrade/i, `Connection sent upstream: ${value}`);
    }
    assert.deepEqual(headerValues(who.headers, 'x-end-to-end'), ['kept']);
    assert.deepEqual(headerValues(who.headers, 'accept'), ['text/plain']);
  });

  test('the backend sees exactly one framing header, for Content-Length and for chunked bodies, and the body intact', async () => {
    const body = 'hello, backend';
    const sha = createHash('sha256').update(body).digest('hex');
    const withLength = await rawTls([
      'POST /api/echo HTTP/1.1',
      `Host: ${SEED_SERVER_NAME}`,
      `Content-Length: ${body.length}`,
      'Connection: close',
      '',
      body,
    ].join('\r\n'));
    const chunked = await rawTls([
      'POST /api/echo HTTP/1.1',
      `Host: ${SEED_SERVER_NAME}`,
      'Transfer-Encoding: chunked',
      'Connection: close',
      '',
      '5',
      'hello',
      '9',
      ', backend',
      '0',
      '',
      '',
    ].join('\r\n'));
    for (const [label, r] of [['Content-Length', withLength], ['chunked', chunked]] as const) {
      assert.equal(r.status, 200, `${label}: ${r.body.toString()}`);
      const echo = JSON.parse(r.body.toString()) as Echo;
      const framing = echo.headers.filter(([name]) => /^(content-length|transfer-encoding)$/i.test(name));
      assert.equal(framing.length, 1, `${label}: framing headers upstream: ${JSON.stringify(framing)}`);
      assert.equal(echo.bytes, body.length, label);
      assert.equal(echo.sha256, sha, label);
    }
    const get = await env.https('/api/whoami', { headers: { host: SEED_SERVER_NAME } });
    const who = JSON.parse(get.body.toString()) as Whoami;
    const framing = who.headers.filter(([name]) => /^(content-length|transfer-encoding)$/i.test(name));
    assert.ok(framing.length <= 1, `GET: ${JSON.stringify(framing)}`);
    assert.ok(framing.every(([, v]) => v === '0'), 'a GET has no body upstream');
  });

  test('request bodies: the seed sets no client_max_body_size, so nginx\'s 1m default applies (1 MiB passes, 1 MiB + 1 is 413)', async () => {
    const mib = Buffer.alloc(1024 * 1024, 0x61);
    const ok = await request({ port: env.httpsPort, tls: env.tls, method: 'POST', path: '/api/echo', body: mib });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body.toString()) as Echo).bytes, mib.length);
    const before = await Promise.all(env.backends.ports.map((p) => backendCount(p)));
    const tooBig = await request({ port: env.httpsPort, tls: env.tls, method: 'POST', path: '/api/echo', body: Buffer.concat([mib, Buffer.from('!')]) }).catch((err: Error) => err);
    assert.ok(!(tooBig instanceof Error), `413 expected, got ${String(tooBig)}`);
    assert.equal(tooBig.status, 413);
    const afterCounts = await Promise.all(env.backends.ports.map((p) => backendCount(p)));
    assert.deepEqual(afterCounts, before, 'the refused request reached no backend');
  });
});

describe('seed 443 over HTTP/2 (fulcrum offers h2 by ALPN, and browsers take it)', () => {
  test('the same rotation and the same forwarding headers; the backend gets HTTP/1.1', async () => {
    const session = http2.connect(`https://127.0.0.1:${env.httpsPort}`, { ca: env.tls.ca, servername: SEED_SERVER_NAME });
    session.on('error', () => {});
    const get = (headers: http2.OutgoingHttpHeaders) => new Promise<{ status: number; backend: string; body: string }>((resolve, reject) => {
      const stream = session.request(headers);
      let status = 0;
      let backend = '';
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        status = Number(h[':status']);
        backend = String(h['x-backend']);
      });
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => resolve({ status, backend, body: Buffer.concat(chunks).toString() }));
      stream.on('error', reject);
      stream.setTimeout(5000, () => stream.close());
      stream.end();
    });
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await get({ ':path': '/api/hello', ':authority': SEED_SERVER_NAME });
        assert.equal(r.status, 200);
        names.push(r.backend);
      }
      assertRotation(names, 'HTTP/2');
      const r = await get({ ':path': '/api/whoami', ':authority': `${SEED_SERVER_NAME}:${env.httpsPort}`, 'x-forwarded-for': '203.0.113.7', 'x-end-to-end': 'kept' });
      assert.equal(r.status, 200);
      const who = JSON.parse(r.body) as Whoami & { httpVersion: string };
      assert.equal(who.httpVersion, '1.1');
      assert.deepEqual(headerValues(who.headers, 'host'), [SEED_SERVER_NAME]);
      assert.deepEqual(headerValues(who.headers, 'x-real-ip'), ['127.0.0.1']);
      assert.deepEqual(headerValues(who.headers, 'x-forwarded-for'), ['203.0.113.7, 127.0.0.1']);
      assert.deepEqual(headerValues(who.headers, 'x-forwarded-proto'), ['https']);
      assert.deepEqual(headerValues(who.headers, 'x-end-to-end'), ['kept']);
      assert.ok(!who.headers.some(([name]) => name.startsWith(':')), 'no pseudo-header reaches the backend');
    } finally {
      session.close();
    }
  });
});
