/**
 * Reliability, issue 3 "Bad input (a clear 4xx, the backend never sees it)":
 * request smuggling forms, bad Host values and request lines, CONNECT and
 * h2c, hop-by-hop headers, oversized heads and bodies, path normalisation,
 * and no insecureHTTPParser anywhere.
 *
 * Every request goes to a real fulcrum on a raw socket, with a real backend
 * process behind it that counts what it receives (/count); for the refused
 * forms a valid request is pipelined behind the bad one, and neither may
 * reach the backend.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headerValues, spawnBackends, type TestBackends } from '../support/backends.js';
import { exchange, get, startProxy, type Proxy } from '../support/reliability.js';
import { request } from '../support/http-client.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Counts { total: number; paths: Record<string, number> }

async function counts(port: number): Promise<Counts> {
  const r = await request({ port, path: '/count', timeoutMs: 5000 });
  return JSON.parse(r.body.toString()) as Counts;
}

/** A valid request pipelined behind a bad one: it must never be answered or forwarded. */
const FOLLOWER = 'GET /api/after-bad-request HTTP/1.1\r\nHost: localhost\r\n\r\n';

interface RefusalCase {
  name: string;
  bytes: string;
  status: number;
}

/**
 * Sends `c.bytes` + FOLLOWER and checks: one response with `c.status`, the
 * connection closed, and the backend's request count unchanged. Returns a
 * list of problems (empty when all is well) so one test can report every case.
 */
async function checkRefused(proxyPort: number, backendPort: number, c: RefusalCase): Promise<string[]> {
  const before = await counts(backendPort);
  const r = await exchange(proxyPort, c.bytes + FOLLOWER, { waitClose: true, timeoutMs: 3000 });
  const after = await counts(backendPort);
  const problems: string[] = [];
  const statuses = r.responses.map((x) => x.status);
  if (statuses.length !== 1 || statuses[0] !== c.status) problems.push(`statuses ${JSON.stringify(statuses)} (wanted [${c.status}]): ${JSON.stringify(r.data.toString('latin1').slice(0, 60))}`);
  if (!r.closed) problems.push('connection left open');
  if (after.total !== before.total) problems.push(`the backend received ${after.total - before.total} request(s): ${JSON.stringify(after.paths)}`);
  return problems.map((p) => `${c.name}: ${p}`);
}

const SMUGGLING: RefusalCase[] = [
  { name: 'CL+TE', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX', status: 400 },
  { name: 'TE+CL', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX', status: 400 },
  { name: 'duplicate Content-Length (equal)', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', status: 400 },
  { name: 'duplicate Content-Length (different)', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello', status: 400 },
  { name: 'Content-Length: 5, 5', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello', status: 400 },
  { name: 'Content-Length: +5', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', status: 400 },
  { name: 'Transfer-Encoding: gzip, chunked', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: ,chunked', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: chunked,', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: chunked, chunked', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding twice', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: identity', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding: xchunked', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'Transfer-Encoding on HTTP/1.0', bytes: 'POST /api/echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'obs-fold', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n', status: 400 },
  { name: 'obs-fold of Transfer-Encoding', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc', status: 400 },
  { name: 'bare LF line endings', bytes: 'GET /api/hello HTTP/1.1\nHost: x\n\n', status: 400 },
  { name: 'bare LF in one header line', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n', status: 400 },
  { name: 'bare CR', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\rX-A: a\r\n\r\n', status: 400 },
  { name: 'NUL in a header value', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', status: 400 },
  { name: 'NUL in the target', bytes: 'GET /api/hel\0lo HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'control character (0x01) in a header value', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', status: 400 },
  { name: 'DEL in a header value', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n', status: 400 },
  { name: 'control character in a header name', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nX\x0bA: a\r\n\r\n', status: 400 },
  { name: 'space before the colon', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello', status: 400 },
  { name: 'header line without a colon', bytes: 'GET /api/hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', status: 400 },
  { name: 'Content-Length too large', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n', status: 400 },
];

const CHUNK_SIZES: RefusalCase[] = [
  { name: 'chunk size "zz"', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk size "-5"', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk size "0x5"', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk size overflowing 64 bits', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk size with a space inside', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk size line ending in bare LF', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'chunk data longer than its size', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n', status: 400 },
  { name: 'control character in a chunk extension', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n', status: 400 },
];

const HOSTS_AND_LINES: RefusalCase[] = [
  { name: 'two Host headers', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n', status: 400 },
  { name: 'two Host headers (same value)', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n', status: 400 },
  { name: 'no Host on HTTP/1.1', bytes: 'GET /api/hello HTTP/1.1\r\n\r\n', status: 400 },
  { name: 'Host with userinfo (user@a)', bytes: 'GET /api/hello HTTP/1.1\r\nHost: user@a.test\r\n\r\n', status: 400 },
  { name: 'Host with a path (a/b)', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test/b\r\n\r\n', status: 400 },
  { name: 'Host with a space', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a .test\r\n\r\n', status: 400 },
  { name: 'Host with a bad port', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test:http\r\n\r\n', status: 400 },
  { name: 'Host with an unclosed IPv6 bracket', bytes: 'GET /api/hello HTTP/1.1\r\nHost: [::1\r\n\r\n', status: 400 },
  { name: 'Host with a query', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test?x\r\n\r\n', status: 400 },
  { name: 'Host with a backslash', bytes: 'GET /api/hello HTTP/1.1\r\nHost: a.test\\b\r\n\r\n', status: 400 },
  { name: 'GET *', bytes: 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'HTTP/0.9 request line', bytes: 'GET /api/hello\r\n\r\n', status: 400 },
  { name: 'HTTP/2.0 request line', bytes: 'GET /api/hello HTTP/2.0\r\nHost: x\r\n\r\n', status: 505 },
  { name: 'HTTP/3.0 request line', bytes: 'GET /api/hello HTTP/3.0\r\nHost: x\r\n\r\n', status: 505 },
  { name: 'the HTTP/2 connection preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 505 },
  { name: 'lower-case http version', bytes: 'GET /api/hello http/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'two spaces in the request line', bytes: 'GET  /api/hello HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'fragment in the target', bytes: 'GET /api/hello#frag HTTP/1.1\r\nHost: x\r\n\r\n', status: 400 },
  { name: 'CONNECT (authority-form)', bytes: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', status: 405 },
  { name: 'CONNECT to a path', bytes: 'CONNECT /api/hello HTTP/1.1\r\nHost: x\r\n\r\n', status: 405 },
];

describe('bad input: refused with a clear 4xx, the connection closed, nothing reaches the backend', () => {
  let backends: TestBackends;
  let proxy: Proxy;

  before(async () => {
    backends = await spawnBackends(1);
    proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
  });
  after(async () => {
    await proxy?.stop();
    await backends?.stop();
  });

  test('control: the follower alone reaches the backend (so the counts below can see a forwarded request)', async () => {
    const before = await counts(backends.ports[0]!);
    const r = await exchange(proxy.port, FOLLOWER);
    assert.equal(r.responses[0]?.status, 404); // the demo backend's 404: it was forwarded
    assert.equal((await counts(backends.ports[0]!)).total, before.total + 1);
  });

  test(`request smuggling forms (${SMUGGLING.length}): 400, closed, nothing forwarded`, async () => {
    const problems: string[] = [];
    for (const c of SMUGGLING) problems.push(...(await checkRefused(proxy.port, backends.ports[0]!, c)));
    assert.deepEqual(problems, []);
  });

  test(`Host values and request lines (${HOSTS_AND_LINES.length}): 400/405/505, closed, nothing forwarded`, async () => {
    const problems: string[] = [];
    for (const c of HOSTS_AND_LINES) problems.push(...(await checkRefused(proxy.port, backends.ports[0]!, c)));
    assert.deepEqual(problems, []);
  });
});

describe('bad input: invalid chunk sizes', () => {
  test(`(${CHUNK_SIZES.length} forms, no idle upstream connection): 400, closed, nothing forwarded`, async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const problems: string[] = [];
      for (const c of CHUNK_SIZES) problems.push(...(await checkRefused(proxy.port, backends.ports[0]!, c)));
      assert.deepEqual(problems, []);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });

  test(
    'with a warm keep-alive pool (the usual state of a busy proxy), the head of a request whose first chunk size is invalid never reaches the backend',
    async () => {
      const backends = await spawnBackends(1);
      const proxy = await startProxy({
        http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
        server: 'location /api { proxy_pass http://u; }',
      });
      try {
        const problems: string[] = [];
        for (const c of CHUNK_SIZES) {
          // An idle pooled connection to the backend, as after any earlier request.
          assert.equal((await exchange(proxy.port, get('/api/hello'))).responses[0]?.status, 200);
          problems.push(...(await checkRefused(proxy.port, backends.ports[0]!, c)));
        }
        assert.deepEqual(problems, []);
      } finally {
        await proxy.stop();
        await backends.stop();
      }
    },
  );
});

describe('bad input: Host and absolute-form targets', () => {
  test('an absolute-form target that disagrees with Host: the target wins (RFC 9112 3.2.2), for routing and for $host upstream', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: [
        `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
        'server { listen 127.0.0.1:{{PORT}}; server_name b.test; location / { return 200 "server b, host $host\\n"; } }',
      ].join('\n'),
      server: [
        'server_name a.test;',
        'location = /which { return 200 "server a, host $host\\n"; }',
        'location /api { proxy_pass http://u; proxy_set_header Host $host; }',
      ].join('\n'),
    });
    try {
      const toB = await exchange(proxy.port, 'GET http://b.test/which HTTP/1.1\r\nHost: a.test\r\n\r\n');
      assert.equal(toB.responses[0]?.body.toString(), 'server b, host b.test\n');
      const toA = await exchange(proxy.port, 'GET http://a.test/which HTTP/1.1\r\nHost: b.test\r\n\r\n');
      assert.equal(toA.responses[0]?.body.toString(), 'server a, host a.test\n');
      // Control: without an absolute-form target, Host routes.
      const byHost = await exchange(proxy.port, 'GET /which HTTP/1.1\r\nHost: b.test\r\n\r\n');
      assert.equal(byHost.responses[0]?.body.toString(), 'server b, host b.test\n');

      const proxied = await exchange(proxy.port, 'GET http://a.test/api/whoami HTTP/1.1\r\nHost: evil.test\r\n\r\n');
      assert.equal(proxied.responses[0]?.status, 200);
      const who = JSON.parse(proxied.responses[0]!.body.toString()) as { url: string; headers: Array<[string, string]> };
      assert.deepEqual(headerValues(who.headers, 'host'), ['a.test'], 'the backend sees the target\'s host, once');
      assert.equal(who.url, '/api/whoami', 'and an origin-form target');
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('bad input: h2c and hop-by-hop headers (CONNECT is with the request lines above)', () => {
  let backends: TestBackends;
  let proxy: Proxy;

  before(async () => {
    backends = await spawnBackends(1);
    proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
  });
  after(async () => {
    await proxy?.stop();
    await backends?.stop();
  });

  test('Upgrade: h2c is never forwarded: the backend sees a plain HTTP/1.1 request, the client a 200 (no 101), and the connection stays usable', async () => {
    const h2c = 'GET /api/whoami HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n';
    const r = await exchange(proxy.port, h2c + get('/api/hello'), { count: 2 });
    assert.deepEqual(r.responses.map((x) => x.status), [200, 200]);
    const who = JSON.parse(r.responses[0]!.body.toString()) as { headers: Array<[string, string]>; httpVersion: string };
    for (const name of ['upgrade', 'http2-settings']) assert.deepEqual(headerValues(who.headers, name), [], `${name} not forwarded`);
    assert.ok(!headerValues(who.headers, 'connection').some((v) => /upgrade|http2-settings/i.test(v)), JSON.stringify(who.headers));
    assert.equal(who.httpVersion, '1.1');
    // Also on POST with h2c: never a 101, never an Upgrade upstream.
    const post = await exchange(proxy.port, 'POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhi');
    assert.equal(post.responses[0]?.status, 200);
    assert.deepEqual(headerValues((JSON.parse(post.responses[0]!.body.toString()) as { headers: Array<[string, string]> }).headers, 'upgrade'), []);
  });

  test('hop-by-hop headers and the ones named in Connection are stripped; the backend sees exactly one framing header, rebuilt', async () => {
    const hopByHop = [
      'Connection: keep-alive, X-Named-Hop, X-Other-Hop',
      'Connection: Proxy-Authorization-Hop',
      'X-Named-Hop: secret',
      'X-Other-Hop: secret',
      'Proxy-Authorization-Hop: secret',
      'Keep-Alive: timeout=5, max=100',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'X-End-To-End: kept',
    ].join('\r\n');
    const stripped = ['x-named-hop', 'x-other-hop', 'proxy-authorization-hop', 'keep-alive', 'proxy-connection', 'te', 'upgrade'];

    const chunked = await exchange(proxy.port, `POST /api/echo HTTP/1.1\r\nHost: x\r\n${hopByHop}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`);
    const withLength = await exchange(proxy.port, `POST /api/echo HTTP/1.1\r\nHost: x\r\n${hopByHop}\r\nContent-Length: 11\r\n\r\nhello world`);
    const noBody = await exchange(proxy.port, `GET /api/whoami HTTP/1.1\r\nHost: x\r\n${hopByHop}\r\n\r\n`);
    for (const [label, r, framing] of [['chunked', chunked, ['transfer-encoding: chunked']], ['Content-Length', withLength, ['content-length: 11']], ['no body', noBody, []]] as const) {
      assert.equal(r.responses[0]?.status, 200, label);
      const seen = JSON.parse(r.responses[0]!.body.toString()) as { headers: Array<[string, string]>; bytes?: number };
      const names = seen.headers.map(([n]) => n.toLowerCase());
      for (const name of stripped) assert.ok(!names.includes(name), `${label}: ${name} reached the backend: ${JSON.stringify(seen.headers)}`);
      // fulcrum may say Connection itself (keep-alive, close), never pass on the client's.
      for (const value of headerValues(seen.headers, 'connection')) assert.match(value, /^(keep-alive|close)$/i, `${label}: Connection: ${value}`);
      assert.deepEqual(headerValues(seen.headers, 'x-end-to-end'), ['kept'], `${label}: end-to-end headers pass`);
      const framingSeen = seen.headers.filter(([n]) => /^(content-length|transfer-encoding)$/i.test(n)).map(([n, v]) => `${n.toLowerCase()}: ${v}`);
      assert.deepEqual(framingSeen, framing, `${label}: exactly the framing fulcrum rebuilt`);
      if (seen.bytes !== undefined) assert.equal(seen.bytes, 11, `${label}: the body arrived whole`);
    }
  });
});

describe('bad input: oversized request line, header and body (414/431/413 before anything is forwarded)', () => {
  async function run(proxyPort: number, backendPort: number, cases: RefusalCase[], passes: Array<{ name: string; bytes: string; status: number }>): Promise<void> {
    const problems: string[] = [];
    for (const c of cases) problems.push(...(await checkRefused(proxyPort, backendPort, c)));
    for (const p of passes) {
      const before = await counts(backendPort);
      const r = await exchange(proxyPort, p.bytes);
      const after = await counts(backendPort);
      if (r.responses[0]?.status !== p.status) problems.push(`${p.name}: status ${r.responses[0]?.status} (wanted ${p.status})`);
      if (after.total !== before.total + 1) problems.push(`${p.name}: should have reached the backend`);
    }
    assert.deepEqual(problems, []);
  }

  const headers = (n: number, size: number) => Array.from({ length: n }, (_, i) => `X-Big-${i}: ${'h'.repeat(size)}\r\n`).join('');

  test('nginx defaults: large_client_header_buffers 4 8k, client_max_body_size 1m', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      await run(proxy.port, backends.ports[0]!, [
        { name: 'request line of 9000 bytes', bytes: `GET /api/hello?${'q'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414 },
        { name: 'request line of 40000 bytes', bytes: `GET /api/hello?${'q'.repeat(40000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414 },
        { name: 'header line of 9000 bytes', bytes: `GET /api/hello HTTP/1.1\r\nHost: x\r\n${headers(1, 9000)}\r\n`, status: 431 },
        { name: 'head of 5 x 7000 bytes', bytes: `GET /api/hello HTTP/1.1\r\nHost: x\r\n${headers(5, 7000)}\r\n`, status: 431 },
        { name: 'Content-Length 1m + 1 (before the body is sent)', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n', status: 413 },
      ], [
        { name: 'request line of 8000 bytes', bytes: `GET /api/hello?${'q'.repeat(8000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 200 },
        // (Node's own 16 KiB header limit stops the demo backend beyond this: the 32k head limit is tested above.)
        { name: 'head of 2 x 7000 bytes', bytes: `GET /api/hello HTTP/1.1\r\nHost: x\r\n${headers(2, 7000)}\r\n`, status: 200 },
        { name: 'body of exactly 1m', bytes: `POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n${'b'.repeat(1048576)}`, status: 200 },
      ]);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });

  test('configured with nginx\'s names: large_client_header_buffers 4 1k, client_max_body_size 10', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }\nlarge_client_header_buffers 4 1k;\nclient_max_body_size 10;`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      await run(proxy.port, backends.ports[0]!, [
        { name: 'request line of 1100 bytes', bytes: `GET /api/hello?${'q'.repeat(1100)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414 },
        { name: 'header line of 1100 bytes', bytes: `GET /api/hello HTTP/1.1\r\nHost: x\r\n${headers(1, 1100)}\r\n`, status: 431 },
        { name: 'head of 5 x 900 bytes', bytes: `GET /api/hello HTTP/1.1\r\nHost: x\r\n${headers(5, 900)}\r\n`, status: 431 },
        { name: 'Content-Length 11', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world', status: 413 },
        { name: 'chunked body of 11', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n', status: 413 },
      ], [
        { name: 'request line of 900 bytes', bytes: `GET /api/hello?${'q'.repeat(900)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 200 },
        { name: 'Content-Length 10', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhelloworld', status: 200 },
        { name: 'chunked body of 10', bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhelloworld\r\n0\r\n\r\n', status: 200 },
      ]);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });

  test('a chunked body that grows past client_max_body_size (1m) in small chunks: 413 and the connection closed', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const chunk = '400\r\n' + 'b'.repeat(1024) + '\r\n';
      const body = chunk.repeat(1024) + '1\r\nb\r\n0\r\n\r\n';
      const r = await exchange(proxy.port, `POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}${FOLLOWER}`, { waitClose: true });
      assert.deepEqual(r.responses.map((x) => x.status), [413]);
      assert.ok(r.closed);
      // fulcrum streams request bodies (README: differences from nginx), so the backend may
      // have seen the start of this one; it never sees it complete, nor the request behind it.
      assert.equal((await counts(backends.ports[0]!)).paths['/api/after-bad-request'], undefined);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });

  test(
    'a chunk whose declared size alone exceeds client_max_body_size is refused at its size line: 413 before anything is forwarded (as nginx)',
    async () => {
      const backends = await spawnBackends(1);
      const proxy = await startProxy({
        http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
        server: 'location /api { proxy_pass http://u; }',
      });
      try {
        const problems = await checkRefused(proxy.port, backends.ports[0]!, {
          name: 'one chunk of 1m + 1',
          bytes: `POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n${'b'.repeat(0x100001)}\r\n0\r\n\r\n`,
          status: 413,
        });
        assert.deepEqual(problems, []);
      } finally {
        await proxy.stop();
        await backends.stop();
      }
    },
  );

  test(
    'a chunked body over client_max_body_size, with a warm keep-alive pool: 413 and the backend never sees the request',
    async () => {
      const backends = await spawnBackends(1);
      const proxy = await startProxy({
        http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }\nclient_max_body_size 10;`,
        server: 'location /api { proxy_pass http://u; }',
      });
      try {
        assert.equal((await exchange(proxy.port, get('/api/hello'))).responses[0]?.status, 200);
        const problems = await checkRefused(proxy.port, backends.ports[0]!, {
          name: 'chunked body of 11 (pool warm)',
          bytes: 'POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n',
          status: 413,
        });
        assert.deepEqual(problems, []);
      } finally {
        await proxy.stop();
        await backends.stop();
      }
    },
  );
});

describe('bad input: path normalisation for location matching', () => {
  // Only /api/ is proxied; everything else is answered by fulcrum itself. A
  // request may reach the backend only if the backend, too, reads its path as
  // being under /api/: the demo backend counts requests by the pathname that
  // WHATWG URL parsing (Node's) gives it.
  let backends: TestBackends;
  let proxy: Proxy;

  before(async () => {
    backends = await spawnBackends(1);
    proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: [
        'location /api/ { proxy_pass http://u; }',
        'location /internal/ { deny all; }',
        'location / { return 404 "not proxied\\n"; }',
      ].join('\n'),
    });
  });
  after(async () => {
    await proxy?.stop();
    await backends?.stop();
  });

  async function check(target: string, allowed: number[]): Promise<string[]> {
    await request({ port: backends.ports[0]!, path: '/count/reset' });
    const r = await exchange(proxy.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 3000 });
    const status = r.responses[0]?.status ?? 0;
    const seen = Object.keys((await counts(backends.ports[0]!)).paths);
    const problems: string[] = [];
    if (!allowed.includes(status)) problems.push(`${target}: status ${status}, wanted one of ${allowed.join('/')}`);
    const outside = seen.filter((p) => !p.startsWith('/api/'));
    if (outside.length > 0) problems.push(`${target}: the backend served ${outside.join(', ')}, outside /api/`);
    return problems;
  }

  test('dot segments, encoded dots and slashes, doubled slashes: answered by the location their normalised form names', async () => {
    const problems: string[] = [];
    const refused = [
      '/api/../internal/secret',
      '/api/./../internal/secret',
      '/api/%2e%2e/internal/secret',
      '/api/%2E%2E/internal/secret',
      '/api/.%2e/internal/secret',
      '/api/..%2finternal/secret',
      '/api/..%2Finternal/secret',
      '/api%2F..%2Finternal/secret',
      '/api/x/..%2F..%2Finternal/secret',
      '//internal/secret',
      '/api//../internal/secret',
      '/%69nternal/secret',
      '/internal%2Fsecret',
    ];
    for (const target of refused) problems.push(...(await check(target, [403])));
    for (const target of ['/../api/hello', '/api/../../api/hello', '/api/%2e%2e/%2e%2e/api/hello', '/api/%00/hello', '/api/%zz/hello']) {
      problems.push(...(await check(target, [400])));
    }
    // Control: spellings that stay under /api/ are proxied.
    for (const target of ['/api/hello', '/api/x/../hello', '/api/./hello', '/api/x/%2e%2e/hello']) problems.push(...(await check(target, [200])));
    assert.deepEqual(problems, []);
    const reached = await counts(backends.ports[0]!);
    assert.ok(reached.total >= 1, 'the control requests did reach the backend');
  });

  test(
    'a backslash in the path cannot take a request out of /api/ at a backend that reads "\\" as "/" (WHATWG URL, Node)',
    async () => {
      const problems: string[] = [];
      for (const target of ['/api/..\\internal/secret', '/api\\..\\internal\\secret']) problems.push(...(await check(target, [400, 403, 404])));
      assert.deepEqual(problems, []);
    },
  );
});

describe('bad input: Node\'s insecureHTTPParser is never used', () => {
  const FORBIDDEN = /insecureHTTPParser|insecure-http-parser/;

  function filesUnder(dir: string, exts: RegExp): string[] {
    let out: string[] = [];
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) out = out.concat(filesUnder(full, exts));
      else if (exts.test(name)) out.push(full);
    }
    return out;
  }

  test('not in the sources, the compiled output, bin/, package.json, nor the running process\'s command line or NODE_OPTIONS', async () => {
    const files = [
      ...filesUnder(join(REPO_ROOT, 'src'), /\.ts$/),
      ...filesUnder(join(REPO_ROOT, 'dist', 'src'), /\.js$/),
      ...filesUnder(join(REPO_ROOT, 'bin'), /\.(c|m)?js$|^fulcrum$/),
      join(REPO_ROOT, 'package.json'),
    ];
    assert.ok(files.length > 20, `found the sources (${files.length} files)`);
    const hits = files.filter((f) => FORBIDDEN.test(readFileSync(f, 'utf8')));
    assert.deepEqual(hits, []);
    // The detector itself works.
    assert.ok(FORBIDDEN.test('http.createServer({ insecureHTTPParser: true })'));

    const proxy = await startProxy({ server: 'location / { return 200 "ok\\n"; }' });
    try {
      const cmdline = readFileSync(`/proc/${proxy.fulcrum.pid}/cmdline`, 'utf8').split('\0');
      const environ = readFileSync(`/proc/${proxy.fulcrum.pid}/environ`, 'utf8').split('\0');
      assert.ok(!cmdline.some((a) => FORBIDDEN.test(a)), cmdline.join(' '));
      assert.ok(!environ.some((e) => e.startsWith('NODE_OPTIONS=') && FORBIDDEN.test(e)), 'NODE_OPTIONS');
      // What insecureHTTPParser would let through is refused.
      for (const bytes of ['GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 'GET / HTTP/1.1\nHost: x\n\n', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
        assert.equal((await exchange(proxy.port, bytes)).responses[0]?.status, 400, JSON.stringify(bytes));
      }
    } finally {
      await proxy.stop();
    }
  });
});
