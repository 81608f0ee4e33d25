import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import https from 'node:https';
import { connect } from 'node:net';
import { startBackend, deterministicBytes, type RunningBackend } from '../../src/demo/backend.js';
import { readRequestHead, startScriptedServer } from '../support/backends.js';
import { makeCA, makeSelfSignedCert, signCert, type CertFiles } from '../support/certs.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { parseHttpResponses, rawRequest, request } from '../support/http-client.js';
import { freePorts, listenOn } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { sleep, waitUntil } from '../support/wait.js';

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`;

describe('ports and temp dirs', () => {
  test('freePorts gives distinct ports', async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    assert.ok(ports.every((p) => p > 0 && p < 65536));
  });

  test('tempDir creates a directory', () => {
    const dir = tempDir('support-test-');
    assert.ok(existsSync(dir));
  });
});

describe('rawRequest and the response parser', () => {
  test('parses two pipelined responses (Content-Length, then chunked with a trailer) on an open connection', async () => {
    const heads: string[] = [];
    const server = await startScriptedServer(async (socket) => {
      heads.push(await readRequestHead(socket), await readRequestHead(socket));
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-N: 1\r\n\r\nfirst');
      socket.write('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n');
      socket.write('3;ext=1\r\nsec\r\n3\r\nond\r\n0\r\nX-Checksum: abc\r\n\r\n');
    });
    try {
      const exchange = await rawRequest(server.port, GET('/one') + GET('/two'));
      assert.deepEqual(heads.map((h) => h.split('\r\n')[0]), ['GET /one HTTP/1.1', 'GET /two HTTP/1.1']);
      assert.equal(exchange.closed, false);
      assert.equal(exchange.responses.length, 2);
      const [first, second] = exchange.responses;
      assert.equal(first!.status, 200);
      assert.equal(first!.headers['x-n'], '1');
      assert.equal(first!.body.toString(), 'first');
      assert.equal(second!.status, 201);
      assert.equal(second!.reason, 'Created');
      assert.equal(second!.chunked, true);
      assert.equal(second!.complete, true);
      assert.equal(second!.body.toString(), 'second');
      assert.equal(second!.headers['set-cookie'], 'a=1, b=2');
      assert.deepEqual(second!.rawHeaders.filter(([n]) => n === 'Set-Cookie'), [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]);
      assert.deepEqual(second!.trailers, { 'x-checksum': 'abc' });
      assert.equal(server.connections, 1);
      assert.deepEqual(server.errors, []);
    } finally {
      await server.close();
    }
  });

  test('sees a close, and a body cut short', async () => {
    const server = await startScriptedServer(async (socket) => {
      await readRequestHead(socket);
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
    });
    try {
      const exchange = await rawRequest(server.port, GET('/'));
      assert.equal(exchange.closed, true);
      assert.equal(exchange.responses.length, 1);
      assert.equal(exchange.responses[0]!.complete, false);
      assert.equal(exchange.responses[0]!.body.toString(), 'short');
    } finally {
      await server.close();
    }
  });

  test('responses without a body: 100 Continue, 204, and HEAD', () => {
    const data = Buffer.from(
      'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc' +
      'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + // answer to HEAD
      'HTTP/1.1 204 No Content\r\n\r\n' +
      'HTTP/1.0 200 OK\r\n\r\nuntil close',
    );
    const responses = parseHttpResponses(data, { methods: ['POST', 'HEAD', 'GET', 'GET'] });
    assert.deepEqual(responses.map((r) => [r.status, r.body.toString(), r.complete]), [
      [100, '', true], [200, 'abc', true], [200, '', true], [204, '', true], [200, 'until close', true],
    ]);
    assert.equal(responses[4]!.httpVersion, '1.0');
  });

  test('works against the real backend, keep-alive and all', async () => {
    const backend = await startBackend({ port: 0, name: 'raw' });
    try {
      const exchange = await rawRequest(backend.port, GET('/hello') + GET('/status/503'));
      assert.deepEqual(exchange.responses.map((r) => [r.status, r.headers['x-backend']]), [[200, 'raw'], [503, 'raw']]);
      assert.equal(exchange.closed, false);
    } finally {
      await backend.close();
    }
  });
});

describe('fault proxy', () => {
  let backend: RunningBackend;
  let proxy: FaultProxy;
  const viaProxy = (path: string, timeoutMs = 5000) => request({ port: proxy.port, path, timeoutMs });

  before(async () => {
    backend = await startBackend({ port: 0, name: 'behind-proxy' });
    proxy = await startFaultProxy({ targetPort: backend.port });
  });
  after(async () => {
    await proxy.close();
    await backend.close();
  });

  test('pass forwards untouched', async () => {
    proxy.setMode('pass');
    const res = await viaProxy('/bytes?n=300000');
    assert.ok(res.body.equals(deterministicBytes(0, 300_000)));
    assert.equal(res.headers['x-backend'], 'behind-proxy');
  });

  test('reset answers new connections with a TCP reset', async () => {
    proxy.setMode('reset');
    await assert.rejects(viaProxy('/hello'), { code: 'ECONNRESET' });
  });

  test('latency delays each direction', async () => {
    proxy.setMode({ latency: 150 });
    const start = Date.now();
    const res = await viaProxy('/hello');
    const elapsed = Date.now() - start;
    assert.equal(res.status, 200);
    assert.ok(elapsed >= 290, `took ${elapsed} ms, expected 150 ms each way`);
  });

  test('slice delivers a response intact in small pieces', async () => {
    proxy.setMode({ slice: 7 });
    const res = await viaProxy('/bytes?n=5000');
    assert.ok(res.body.equals(deterministicBytes(0, 5000)));
  });

  test('stall accepts and never answers', async () => {
    proxy.setMode('stall');
    await assert.rejects(viaProxy('/hello', 300), /no activity for 300 ms/);
  });

  test('closeAfter cuts the response after that many bytes, with a FIN', async () => {
    proxy.setMode({ closeAfter: 100 });
    const exchange = await rawRequest(proxy.port, GET('/bytes?n=100000'));
    assert.equal(exchange.closed, true);
    assert.equal(exchange.errorCode, undefined, 'closed, not reset');
    assert.equal(exchange.data.length, 100);
    assert.equal(exchange.responses[0]?.complete ?? false, false);
  });

  test('setMode affects connections already open', async () => {
    let stalled = false;
    const server = await startScriptedServer(async (socket) => {
      await readRequestHead(socket);
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab');
      await waitUntil(() => stalled);
      socket.write('cdef');
    });
    const scriptedProxy = await startFaultProxy({ targetPort: server.port });
    const client = connect(scriptedProxy.port, '127.0.0.1');
    try {
      let received = '';
      client.on('data', (chunk: Buffer) => { received += chunk.toString(); });
      client.write(GET('/'));
      await waitUntil(() => received.endsWith('ab'), { description: 'the first body bytes' });
      scriptedProxy.setMode('stall');
      stalled = true;
      await sleep(300);
      assert.ok(received.endsWith('\r\n\r\nab'), 'nothing after the stall');
    } finally {
      client.destroy();
      await scriptedProxy.close();
      await server.close();
    }
  });
});

describe('certificates', () => {
  const dir = tempDir('support-certs-');

  async function handshake(server: CertFiles, clientCa: string | undefined, servername = 'localhost'): Promise<string> {
    const tlsServer = https.createServer({ cert: server.cert, key: server.key }, (_req, res) => res.end('secure'));
    const port = await listenOn(tlsServer);
    try {
      const res = await request({ port, path: '/', tls: { ca: clientCa, servername } });
      return res.body.toString();
    } finally {
      tlsServer.close();
    }
  }

  test('a TLS server with a self-signed certificate accepts a client that trusts it', async () => {
    const cert = makeSelfSignedCert(dir, { commonName: 'localhost' });
    assert.match(cert.cert, /BEGIN CERTIFICATE/);
    assert.equal(await handshake(cert, cert.cert), 'secure');
  });

  test('a client that does not trust it refuses', async () => {
    const cert = makeSelfSignedCert(dir, { commonName: 'untrusted', keyType: 'rsa', altNames: ['untrusted.test'] });
    await assert.rejects(handshake(cert, undefined, 'untrusted.test'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  test('a CA-signed certificate is trusted through the CA, for its names only', async () => {
    const ca = makeCA(dir);
    const leaf = signCert(ca, dir, { commonName: 'api.test', altNames: ['api.test', 'DNS:*.api.test', '127.0.0.1'] });
    assert.equal(await handshake(leaf, ca.cert, 'api.test'), 'secure');
    assert.equal(await handshake(leaf, ca.cert, 'v2.api.test'), 'secure');
    await assert.rejects(handshake(leaf, ca.cert, 'other.test'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });
});

describe('waitUntil', () => {
  test('resolves with the first truthy value, and names what it waited for on timeout', async () => {
    let calls = 0;
    assert.equal(await waitUntil(() => (++calls >= 3 ? 'done' : undefined), { intervalMs: 1 }), 'done');
    await assert.rejects(
      waitUntil(() => { throw new Error('not yet'); }, { timeoutMs: 50, description: 'the moon' }),
      /waiting for the moon; last error: not yet/,
    );
  });
});
