/**
 * The seed's port-80 server: everything except the ACME challenge path is
 * redirected with `return 301 https://$host$request_uri;`.
 *
 * nginx's variables: $host is the host from the request line, else the Host
 * header, else the server name; lower-cased and without the port.
 * $request_uri is the original request target, query included, exactly as
 * the client sent it (not normalised, not decoded).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest } from '../support/http-client.js';
import { SEED_SERVER_NAME, backendCount, startSeed, type SeedEnv } from '../support/seed.js';

let env: SeedEnv;

before(async () => {
  env = await startSeed();
});

after(async () => {
  await env?.stop();
});

/** One raw request on port "80"; `Connection: close` so the exchange ends at once. */
async function raw80(requestLine: string, headers: string[] = ['Host: ' + SEED_SERVER_NAME]): Promise<{ status: number; location: string | undefined; body: string; closed: boolean }> {
  const bytes = [requestLine, ...headers, 'Connection: close', '', ''].join('\r\n');
  const method = requestLine.split(' ')[0]!;
  const exchange = await rawRequest(env.httpPort, bytes, { methods: [method], timeoutMs: 2000 });
  const response = exchange.responses[0];
  assert.ok(response, `no HTTP response to ${JSON.stringify(requestLine)}; got ${JSON.stringify(exchange.data.toString('latin1'))}`);
  assert.equal(response.complete, true, 'the response is complete');
  return { status: response.status, location: response.headers['location'], body: response.body.toString('latin1'), closed: exchange.closed };
}

describe('seed port 80: return 301 https://$host$request_uri', () => {
  const cases: Array<{ name: string; target: string; host: string; expected: string }> = [
    { name: 'root', target: '/', host: SEED_SERVER_NAME, expected: `https://${SEED_SERVER_NAME}/` },
    { name: 'path and query string', target: '/api/hello?x=1&y=two', host: SEED_SERVER_NAME, expected: `https://${SEED_SERVER_NAME}/api/hello?x=1&y=two` },
    { name: 'another Host', target: '/login?next=%2Fhome', host: 'www.example.test', expected: 'https://www.example.test/login?next=%2Fhome' },
    { name: 'Host with a port: $host drops it', target: '/a', host: 'example.test:8080', expected: 'https://example.test/a' },
    { name: 'Host in capitals: $host is lower-cased', target: '/Mixed/Case?Q=V', host: 'WWW.Example.TEST', expected: 'https://www.example.test/Mixed/Case?Q=V' },
    { name: 'encoded characters stay as sent', target: '/caf%C3%A9/a%20b?q=%3Cx%3E', host: 'example.test', expected: 'https://example.test/caf%C3%A9/a%20b?q=%3Cx%3E' },
    { name: 'unnormalised path is kept as sent', target: '/a//b/./c/../d?', host: 'example.test', expected: 'https://example.test/a//b/./c/../d?' },
    { name: 'IP literal Host', target: '/x?y', host: '127.0.0.1', expected: 'https://127.0.0.1/x?y' },
    { name: 'a path that only looks like the ACME one', target: '/.well-known/acme-challenge', host: 'example.test', expected: 'https://example.test/.well-known/acme-challenge' },
    { name: 'another .well-known path', target: '/.well-known/security.txt', host: 'example.test', expected: 'https://example.test/.well-known/security.txt' },
  ];
  for (const c of cases) {
    test(`${c.name}: GET ${c.target} (Host: ${c.host}) -> 301 ${c.expected}`, async () => {
      const r = await raw80(`GET ${c.target} HTTP/1.1`, [`Host: ${c.host}`]);
      assert.equal(r.status, 301);
      assert.equal(r.location, c.expected);
    });
  }

  test('through a real HTTP client: 301 with the Location, then the same URL over HTTPS answers', async () => {
    const r = await env.http('/api/hello?from=redirect', { headers: { host: `${SEED_SERVER_NAME}:${env.httpPort}` } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://${SEED_SERVER_NAME}/api/hello?from=redirect`);
    // Following it (to the test's 443 port) reaches a backend.
    const followed = await env.https('/api/hello?from=redirect', { headers: { host: SEED_SERVER_NAME } });
    assert.equal(followed.status, 200);
    assert.match(followed.body.toString(), /^Hello from backend_\d\n$/);
  });

  test('every method is redirected, and HEAD gets no body', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await raw80(`${method} /api/echo?m=${method} HTTP/1.1`, [`Host: ${SEED_SERVER_NAME}`, 'Content-Length: 0']);
      assert.equal(r.status, 301, method);
      assert.equal(r.location, `https://${SEED_SERVER_NAME}/api/echo?m=${method}`, method);
    }
    const head = await raw80('HEAD /page HTTP/1.1');
    assert.equal(head.status, 301);
    assert.equal(head.location, `https://${SEED_SERVER_NAME}/page`);
    assert.equal(head.body, '');
  });

  test('a POST body does not reach any backend on port 80', async () => {
    const before = await Promise.all(env.backends.ports.map((port) => backendCount(port)));
    const r = await raw80('POST /api/echo HTTP/1.1', [`Host: ${SEED_SERVER_NAME}`, 'Content-Length: 5']);
    assert.equal(r.status, 301);
    const afterCounts = await Promise.all(env.backends.ports.map((port) => backendCount(port)));
    assert.deepEqual(afterCounts, before, 'no backend saw a request');
  });

  test('HTTP/1.0 without Host: $host is the server_name', async () => {
    const r = await raw80('GET /old-client?z=1 HTTP/1.0', []);
    assert.equal(r.status, 301);
    assert.equal(r.location, `https://${SEED_SERVER_NAME}/old-client?z=1`);
  });

  test('absolute-form request target: $host comes from the request line, $request_uri is its path and query', async () => {
    const r = await raw80('GET http://Absolute.Example.test/p/q?r=s HTTP/1.1', ['Host: ignored.example.test']);
    assert.equal(r.status, 301);
    assert.equal(r.location, 'https://absolute.example.test/p/q?r=s');
  });

  test('the redirect is served on a keep-alive connection, request after request', async () => {
    const one = (path: string) => `GET ${path} HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\n\r\n`;
    const exchange = await rawRequest(env.httpPort, one('/one') + one('/two?2') + one('/three'), { timeoutMs: 500 });
    assert.deepEqual(exchange.responses.map((r) => [r.status, r.headers['location']]), [
      [301, `https://${SEED_SERVER_NAME}/one`],
      [301, `https://${SEED_SERVER_NAME}/two?2`],
      [301, `https://${SEED_SERVER_NAME}/three`],
    ]);
    assert.equal(exchange.closed, false, 'the connection stays open');
  });
});
