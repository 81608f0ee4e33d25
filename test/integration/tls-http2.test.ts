/**
 * HTTP/2 to clients on a TLS listener, proxied to HTTP/1.1 backends, checked
 * with real HTTP/2 clients (curl --http2 and nghttp from nghttp2-client):
 * answers, a streamed response arriving event by event, an upload, the
 * `:authority` becoming Host, no connection-specific header in responses
 * (nghttp refuses a response that has one), HSTS; and `redirect_https` on
 * the plain listener.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { spawnBackends, headerValues, type TestBackends } from '../support/backends.js';
import { makeCA, signCert, type CertFiles } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';

const hasCurl = spawnSync('curl', ['--version']).stdout?.toString().includes('HTTP2') ?? false;
const hasNghttp = spawnSync('nghttp', ['--version']).status === 0;

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let ca: CertFiles;
let dir: string;
let httpPort: number;
let httpsPort: number;

before(async () => {
  backends = await spawnBackends(2);
  dir = tempDir('fulcrum-h2-');
  ca = makeCA(dir);
  const cert = signCert(ca, dir, { commonName: 'h2.test', altNames: ['h2.test', 'localhost', '127.0.0.1'] });
  [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  upstream app { ${backends.ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} }
  server {
    listen 127.0.0.1:${httpPort};
    server_name h2.test;
    redirect_https on;
  }
  server {
    listen 127.0.0.1:${httpsPort} ssl;
    server_name h2.test localhost;
    ssl_certificate ${cert.certPath};
    ssl_certificate_key ${cert.keyPath};
    hsts 365d;
    location /api {
      proxy_pass http://app;
      proxy_buffering off;
      client_max_body_size 16m;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms since start at which each stdout chunk arrived. */
  chunkTimes: number[];
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const chunkTimes: number[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      chunkTimes.push(Date.now() - t0);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), chunkTimes });
    });
  });
}

const curlBase = (): string[] => ['-sS', '--http2', '--cacert', ca.certPath, '--resolve', `h2.test:${httpsPort}:127.0.0.1`];
const url = (path: string): string => `https://h2.test:${httpsPort}${path}`;

describe('HTTP/2 with curl --http2', { skip: hasCurl ? false : 'curl with HTTP/2 is not installed' }, () => {
  test('GET is answered over HTTP/2 by the backends, with HSTS and no connection-specific headers', async () => {
    const r = await run('curl', [...curlBase(), '-D', '-', '-o', '/dev/null', '-w', 'version=%{http_version}\n', url('/api/hello')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/2 200/);
    assert.match(r.stdout, /version=2\n/);
    assert.match(r.stdout, /^strict-transport-security: max-age=31536000\r?$/m);
    assert.doesNotMatch(r.stdout, /^(connection|keep-alive|transfer-encoding|upgrade|proxy-connection):/im);
    const bodies = await Promise.all([1, 2, 3, 4].map(() => run('curl', [...curlBase(), url('/api/hello')])));
    assert.deepEqual(new Set(bodies.map((b) => b.stdout)), new Set(['Hello from backend_1\n', 'Hello from backend_2\n']), 'round robin over HTTP/2');
  });

  test(':authority becomes the Host the backend sees', async () => {
    const r = await run('curl', [...curlBase(), url('/api/whoami')]);
    assert.equal(r.code, 0, r.stderr);
    const who = JSON.parse(r.stdout) as { headers: [string, string][]; httpVersion: string };
    assert.deepEqual(headerValues(who.headers, 'host'), ['h2.test']);
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-proto'), ['https']);
    assert.equal(who.httpVersion, '1.1', 'proxied to the backend over HTTP/1.1');
  });

  test('a streamed response arrives event by event', async () => {
    const r = await run('curl', [...curlBase(), '-N', url('/api/stream?n=4&interval=400')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stdout.match(/^data: \d from backend_\d$/gm) ?? []).length, 4);
    const first = r.chunkTimes[0]!;
    const last = r.chunkTimes[r.chunkTimes.length - 1]!;
    assert.ok(r.chunkTimes.length >= 3, `events arrived in ${r.chunkTimes.length} pieces`);
    assert.ok(last - first >= 900, `the first event came ${last - first} ms before the last: streamed, not buffered`);
  });

  test('an upload is relayed intact', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(dir, 'upload.bin');
    writeFileSync(file, body);
    const r = await run('curl', [...curlBase(), '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', url('/api/echo')]);
    assert.equal(r.code, 0, r.stderr);
    const echo = JSON.parse(r.stdout) as { bytes: number; sha256: string };
    assert.equal(echo.bytes, body.length);
    assert.equal(echo.sha256, createHash('sha256').update(body).digest('hex'));
  });
});

describe('HTTP/2 with nghttp', { skip: hasNghttp ? false : 'nghttp (nghttp2-client) is not installed' }, () => {
  test('GET and a streamed response; nghttp accepts every response header block', async () => {
    const r = await run('nghttp', ['-v', '-H', ':authority: h2.test', `https://127.0.0.1:${httpsPort}/api/stream?n=3&interval=100`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /:status: 200/);
    assert.equal((r.stdout.match(/data: \d from backend_\d/g) ?? []).length, 3);
    assert.doesNotMatch(r.stdout, /recv HEADERS[\s\S]*?\b(connection|keep-alive|transfer-encoding): /i);
    const several = await run('nghttp', ['-n', '-s', '-H', ':authority: h2.test', ...Array.from({ length: 5 }, (_, i) => `https://127.0.0.1:${httpsPort}/api/hello?i=${i}`)]);
    assert.equal(several.code, 0, several.stdout + several.stderr);
    assert.equal((several.stdout.match(/ 200 /g) ?? []).length, 5, several.stdout);
  });
});

describe('HTTP/2 from node:http2', () => {
  test('a host field that differs from :authority does not win (RFC 9113 8.3.1)', async () => {
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { ca: ca.cert, servername: 'h2.test' });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/api/whoami', ':authority': 'h2.test', host: 'evil.test' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (data += d));
        req.on('end', () => resolve(data));
        req.on('error', reject);
      });
      const who = JSON.parse(body) as { headers: [string, string][] };
      assert.deepEqual(headerValues(who.headers, 'host'), ['h2.test']);
    } finally {
      session.close();
    }
  });
});

describe('redirect_https', () => {
  test('the plain listener answers 301 to https://$host$request_uri', async () => {
    const res = await request({ port: httpPort, path: '/api/x?y=1', headers: { host: 'h2.test' } });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, 'https://h2.test/api/x?y=1');
    assert.equal(res.headers['strict-transport-security'], undefined, 'no HSTS on plain HTTP');
  });
});
