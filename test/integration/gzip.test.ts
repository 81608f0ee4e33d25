/**
 * nginx's gzip module: which responses are compressed (status 200/403/404,
 * gzip_types, gzip_min_length against Content-Length, no Content-Encoding
 * yet, the client's Accept-Encoding, HEAD, gzip_http_version, gzip_proxied
 * with Via, gzip_disable), what changes in the head (Content-Encoding, no
 * Content-Length, weak ETag, no Accept-Ranges, Vary with gzip_vary), and that
 * compressing keeps streaming: a server-sent event decodes as it arrives, a
 * slow client holds back a big response instead of fulcrum buffering it.
 * Proxied responses, `return` text and static files alike; HTTP/1.1, curl
 * and HTTP/2. Bad values are errors naming file:line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { readRequestHead, spawnBackends, startScriptedServer, type ScriptedServer, type TestBackends } from '../support/backends.js';
import { makeCA, signCert, type CertFiles } from '../support/certs.js';
import { runFulcrum, startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { openRequest, rawRequest, request, type HttpResponse } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { rssBytes } from '../support/seed.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';
import { sleep } from '../support/wait.js';

const MB = 1024 * 1024;
const JSON_BODY = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `item number ${i}` })) });
const TEXT = 'compress me, compress me, compress me, compress me\n'.repeat(20);
const BIG_TOTAL = 20 * MB;
/** sha256 of each /s/big body the scripted backend sent, in order. */
const bigDigests: string[] = [];

let backends: TestBackends;
let scripted: ScriptedServer;
let fulcrum: FulcrumProcess;
let ca: CertFiles;
let dir: string;
let port: number;
let h2Port: number;
const STATIC_SMALL = '<html><body>' + 'static text '.repeat(100) + '</body></html>\n';
const STATIC_LARGE = 'large static line\n'.repeat(10_000);

/** The scripted backend: a response per path, each on its own connection (Connection: close). */
async function script(socket: Socket): Promise<void> {
  const head = await readRequestHead(socket);
  const [method, target] = head.split(' ') as [string, string];
  const path = target.replace(/^\/[a-z0-9]+\//, '/');
  const send = (status: string, headers: Record<string, string | number>, body: string | Buffer): void => {
    let out = `HTTP/1.1 ${status}\r\nConnection: close\r\n`;
    for (const [k, v] of Object.entries(headers)) out += `${k}: ${v}\r\n`;
    socket.write(out + '\r\n');
    if (method !== 'HEAD') socket.write(body);
    socket.end();
  };
  const json = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(JSON_BODY), ETag: '"v1-abc"', 'Accept-Ranges': 'bytes' };
  switch (path) {
    case '/json':
      return send('200 OK', json, JSON_BODY);
    case '/json404':
      return send('404 Not Found', json, JSON_BODY);
    case '/json500':
      return send('500 Internal Server Error', json, JSON_BODY);
    case '/json-chunked': {
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const body = Buffer.from(JSON_BODY);
      socket.end(`${body.length.toString(16)}\r\n${JSON_BODY}\r\n0\r\n\r\n`);
      return;
    }
    case '/short':
      return send('200 OK', { 'Content-Type': 'application/json', 'Content-Length': 9 }, '{"a":"b"}');
    case '/encoded':
      return send('200 OK', { 'Content-Type': 'application/json', 'Content-Encoding': 'br', 'Content-Length': Buffer.byteLength(JSON_BODY) }, JSON_BODY);
    case '/image':
      return send('200 OK', { 'Content-Type': 'image/png', 'Content-Length': Buffer.byteLength(JSON_BODY) }, JSON_BODY);
    case '/big': {
      // Random base64 text: compressible (to about 3/4) yet still big once compressed, so the client's pace matters.
      socket.write(`HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${BIG_TOTAL}\r\n\r\n`);
      const hash = createHash('sha256');
      for (let sent = 0; sent < BIG_TOTAL && !socket.destroyed; ) {
        const piece = Buffer.from(randomBytes(48 * 1024).toString('base64')).subarray(0, Math.min(64 * 1024, BIG_TOTAL - sent));
        hash.update(piece);
        sent += piece.length;
        if (!socket.write(piece)) await new Promise<void>((resolve) => { socket.once('drain', resolve); socket.once('close', resolve); });
      }
      bigDigests.push(hash.digest('hex'));
      socket.end();
      return;
    }
    default:
      return send('404 Not Found', { 'Content-Length': 0 }, '');
  }
}

before(async () => {
  backends = await spawnBackends(1);
  scripted = await startScriptedServer(script);
  dir = tempDir('fulcrum-gzip-');
  ca = makeCA(dir);
  const cert = signCert(ca, dir, { commonName: 'localhost', altNames: ['localhost', '127.0.0.1'] });
  writeFileSync(join(dir, 'small.html'), STATIC_SMALL);
  writeFileSync(join(dir, 'large.txt'), STATIC_LARGE);
  [port, h2Port] = (await freePorts(2)) as [number, number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  gzip on;
  gzip_types text/plain text/event-stream application/json;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  upstream scripted { server 127.0.0.1:${scripted.port}; }
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${h2Port} ssl;
    ssl_certificate ${cert.certPath};
    ssl_certificate_key ${cert.keyPath};
    location /api/ { proxy_pass http://app/; }
    location /s/ { proxy_pass http://scripted; }
    location /vary/ { gzip_vary on; proxy_pass http://scripted; }
    location /any/ { gzip_proxied any; proxy_pass http://scripted; }
    location /expired/ { gzip_proxied expired no-cache; proxy_pass http://scripted; }
    location /min/ { gzip_min_length 5000; proxy_pass http://scripted; }
    location /off/ { gzip off; proxy_pass http://scripted; }
    location /all/ { gzip_types *; proxy_pass http://scripted; }
    location /disable/ { gzip_disable "^Mozilla/4\\.0 \\(compatible; MSIE" "BadBot"; proxy_pass http://scripted; }
    location /v10/ { gzip_http_version 1.0; proxy_pass http://scripted; }
    location /level9/ { gzip_comp_level 9; proxy_pass http://scripted; }
    location = /ret { default_type text/plain; return 200 "${TEXT.slice(0, 200)}"; }
    location /files/ { alias ${dir}/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await scripted?.close();
  await backends?.stop();
});

const GZIP = { 'accept-encoding': 'gzip, deflate, br' };

function assertGzipped(res: HttpResponse, want: string | Buffer): void {
  assert.equal(res.headers['content-encoding'], 'gzip', `headers: ${JSON.stringify(res.headers)}`);
  assert.equal(res.headers['content-length'], undefined);
  assert.equal(zlib.gunzipSync(res.body).toString('latin1'), Buffer.from(want).toString('latin1'));
}

function assertPlain(res: HttpResponse, want: string): void {
  assert.equal(res.headers['content-encoding'], undefined, `headers: ${JSON.stringify(res.headers)}`);
  assert.equal(res.body.toString(), want);
}

describe('gzip: what is compressed', { concurrency: 4 }, () => {
  test('a proxied JSON response decodes to exactly the backend\'s bytes; chunked on HTTP/1.1, strong ETag weakened, Accept-Ranges gone', async () => {
    const res = await request({ port, path: '/s/json', headers: GZIP });
    assert.equal(res.status, 200);
    assertGzipped(res, JSON_BODY);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(res.headers.etag, 'W/"v1-abc"');
    assert.equal(res.headers['accept-ranges'], undefined);
    assert.equal(res.headers.vary, undefined, 'gzip_vary is off by default');
    assert.ok(res.body.length < Buffer.byteLength(JSON_BODY) / 2, `${res.body.length} compressed bytes`);
  });

  test('the demo backend\'s text/plain; charset=utf-8 (parameters ignored), a chunked upstream body, a 404, gzip_comp_level 9', async () => {
    assertGzipped(await request({ port, path: '/api/hello', headers: GZIP }), 'Hello from backend_1\n');
    assertGzipped(await request({ port, path: '/s/json-chunked', headers: GZIP }), JSON_BODY);
    const notFound = await request({ port, path: '/s/json404', headers: GZIP });
    assert.equal(notFound.status, 404);
    assertGzipped(notFound, JSON_BODY);
    assertGzipped(await request({ port, path: '/level9/json', headers: GZIP }), JSON_BODY);
  });

  test('curl --compressed gets the body', async () => {
    // Not spawnSync: the scripted backend answers from this process's event loop.
    const headFile = join(dir, 'curl-head.txt');
    const child = spawn('curl', ['-sS', '--compressed', '-D', headFile, `http://127.0.0.1:${port}/s/json`]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, stderr);
    assert.equal(stdout, JSON_BODY);
    assert.match(readFileSync(headFile, 'latin1'), /^content-encoding: gzip\r?$/im);
  });

  test('`return 200 "text"` and static files (small and streamed) are compressed too', async () => {
    assertGzipped(await request({ port, path: '/ret', headers: GZIP }), TEXT.slice(0, 200));
    const small = await request({ port, path: '/files/small.html', headers: GZIP });
    assertGzipped(small, STATIC_SMALL);
    assert.match(String(small.headers.etag), /^W\/"/);
    assert.equal(small.headers['accept-ranges'], undefined);
    assertGzipped(await request({ port, path: '/files/large.txt', headers: GZIP }), STATIC_LARGE);
  });

  test('Accept-Encoding variants: "gzip;q=0" and "identity" refuse, "GZIP; q=0.5" accepts', async () => {
    assertPlain(await request({ port, path: '/s/json' }), JSON_BODY);
    assertPlain(await request({ port, path: '/s/json', headers: { 'accept-encoding': 'gzip;q=0, deflate' } }), JSON_BODY);
    assertPlain(await request({ port, path: '/s/json', headers: { 'accept-encoding': 'identity' } }), JSON_BODY);
    assertPlain(await request({ port, path: '/s/json', headers: { 'accept-encoding': 'xgzip' } }), JSON_BODY);
    assertGzipped(await request({ port, path: '/s/json', headers: { 'accept-encoding': 'br, GZIP; q=0.5' } }), JSON_BODY);
  });

  test('not compressed: type not in gzip_types, below gzip_min_length, already encoded, status 500, gzip off', async () => {
    const image = await request({ port, path: '/s/image', headers: GZIP });
    assertPlain(image, JSON_BODY);
    assert.equal(image.headers['content-length'], String(Buffer.byteLength(JSON_BODY)));
    assertPlain(await request({ port, path: '/s/short', headers: GZIP }), '{"a":"b"}');
    assertPlain(await request({ port, path: '/min/json', headers: GZIP }), JSON_BODY);
    const encoded = await request({ port, path: '/s/encoded', headers: GZIP });
    assert.equal(encoded.headers['content-encoding'], 'br');
    assert.equal(encoded.body.toString(), JSON_BODY);
    const failed = await request({ port, path: '/s/json500', headers: GZIP });
    assert.equal(failed.status, 500);
    assertPlain(failed, JSON_BODY);
    assert.equal(failed.headers.etag, '"v1-abc"');
    assertPlain(await request({ port, path: '/off/json', headers: GZIP }), JSON_BODY);
    assertGzipped(await request({ port, path: '/all/image', headers: GZIP }), JSON_BODY);
  });

  test('HEAD is not compressed and keeps its Content-Length', async () => {
    const res = await request({ port, method: 'HEAD', path: '/s/json', headers: GZIP });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(JSON_BODY)));
  });

  test('HTTP/1.0 is not compressed by default; with gzip_http_version 1.0 it is, close-delimited', async () => {
    const plain = await rawRequest(port, 'GET /s/json HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n');
    const plainText = plain.data.toString('latin1');
    assert.doesNotMatch(plainText, /content-encoding/i);
    assert.ok(plainText.endsWith(JSON_BODY));
    const gz = await rawRequest(port, 'GET /v10/json HTTP/1.0\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n');
    const split = gz.data.indexOf('\r\n\r\n');
    const head = gz.data.subarray(0, split).toString('latin1');
    assert.match(head, /^Content-Encoding: gzip$/im);
    assert.match(head, /^Connection: close$/im);
    assert.doesNotMatch(head, /^(Content-Length|Transfer-Encoding):/im);
    assert.equal(zlib.gunzipSync(gz.data.subarray(split + 4)).toString(), JSON_BODY);
  });

  test('gzip_proxied: a request with Via is not compressed by default, is with "any", and with "expired no-cache" when Cache-Control says so', async () => {
    const via = { ...GZIP, via: '1.1 some-proxy' };
    assertPlain(await request({ port, path: '/s/json', headers: via }), JSON_BODY);
    assertGzipped(await request({ port, path: '/any/json', headers: via }), JSON_BODY);
    // The scripted JSON has neither Expires nor Cache-Control: nginx's rule then compresses (no_last_modified/no_etag not set).
    assertGzipped(await request({ port, path: '/expired/json', headers: via }), JSON_BODY);
    // The demo backend's server-sent events say Cache-Control: no-cache.
    const sse = await request({ port, path: '/api/stream?n=1&interval=0', headers: via });
    assert.equal(sse.headers['content-encoding'], undefined, 'the default location refuses a proxied request');
  });

  test('gzip_disable matches User-Agent case-insensitively', async () => {
    assertPlain(await request({ port, path: '/disable/json', headers: { ...GZIP, 'user-agent': 'the badbot/1.0' } }), JSON_BODY);
    assertPlain(await request({ port, path: '/disable/json', headers: { ...GZIP, 'user-agent': 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)' } }), JSON_BODY);
    assertGzipped(await request({ port, path: '/disable/json', headers: { ...GZIP, 'user-agent': 'curl/8.5.0' } }), JSON_BODY);
  });

  test('gzip_vary adds Vary: Accept-Encoding to compressible responses, also when this client gets them plain', async () => {
    const gz = await request({ port, path: '/vary/json', headers: GZIP });
    assertGzipped(gz, JSON_BODY);
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    const plain = await request({ port, path: '/vary/json' });
    assertPlain(plain, JSON_BODY);
    assert.equal(plain.headers.vary, 'Accept-Encoding');
    const image = await request({ port, path: '/vary/image', headers: GZIP });
    assert.equal(image.headers.vary, undefined, 'not a gzip_types type: no Vary');
  });
});

describe('gzip: streaming', () => {
  test('server-sent events through gzip: each event decodes while the backend is still sending', async () => {
    const interval = 400;
    const res = await openRequest({ port, path: `/api/stream?n=3&interval=${interval}`, headers: GZIP });
    assert.equal(res.headers['content-encoding'], 'gzip');
    const started = performance.now();
    const gunzip = zlib.createGunzip();
    res.pipe(gunzip);
    const arrivals: Array<{ at: number; text: string }> = [];
    gunzip.on('data', (d: Buffer) => arrivals.push({ at: performance.now() - started, text: d.toString() }));
    await new Promise<void>((resolve, reject) => {
      gunzip.once('end', resolve);
      gunzip.once('error', reject);
    });
    const ended = performance.now() - started;
    const text = arrivals.map((a) => a.text).join('');
    assert.equal(text, [0, 1, 2].map((i) => `data: ${i} from backend_1\n\n`).join(''));
    const first = arrivals.find((a) => a.text.includes('data: 0'))!;
    assert.ok(first.at < ended - interval, `event 0 decoded at ${first.at.toFixed(0)} ms, the stream ended at ${ended.toFixed(0)} ms`);
    assert.ok(arrivals.length >= 3, `${arrivals.length} decoded pieces: ${JSON.stringify(arrivals)}`);
  });

  test(`a ${BIG_TOTAL / MB} MB response to a slow client: decodes to the backend's bytes, fulcrum's RSS stays flat`, async (t) => {
    const baseline = rssBytes(fulcrum.pid)!;
    const res = await openRequest({ port, path: '/s/big', headers: GZIP, timeoutMs: 60_000 });
    assert.equal(res.headers['content-encoding'], 'gzip');
    const hash = createHash('sha256');
    let decoded = 0;
    let peak = baseline;
    const gunzip = zlib.createGunzip();
    gunzip.on('data', (d: Buffer) => {
      hash.update(d);
      decoded += d.length;
    });
    // Read slowly: a pause every so often, so fulcrum's writes to this client back up.
    let received = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      gunzip.write(chunk);
      received += chunk.length;
      if (received > 256 * 1024) {
        received = 0;
        await sleep(15);
        peak = Math.max(peak, rssBytes(fulcrum.pid) ?? 0);
      }
    }
    await new Promise<void>((resolve, reject) => {
      gunzip.once('end', resolve);
      gunzip.once('error', reject);
      gunzip.end();
    });
    assert.equal(decoded, BIG_TOTAL);
    assert.equal(hash.digest('hex'), bigDigests.at(-1));
    const growth = peak - baseline;
    t.diagnostic(`RSS baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB`);
    assert.ok(growth < 60 * MB, `fulcrum's RSS grew by ${(growth / MB).toFixed(1)} MB`);
  });
});

describe('gzip over HTTP/2', () => {
  test('a proxied response and server-sent events are compressed; no content-length', async () => {
    const session = http2.connect(`https://127.0.0.1:${h2Port}`, { ca: ca.cert, servername: 'localhost' });
    try {
      const get = (path: string): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }> =>
        new Promise((resolve, reject) => {
          const stream = session.request({ ':path': path, 'accept-encoding': 'gzip' });
          let headers: http2.IncomingHttpHeaders = {};
          const body: Buffer[] = [];
          stream.on('response', (h) => (headers = h));
          stream.on('data', (d: Buffer) => body.push(d));
          stream.on('end', () => resolve({ headers, body: Buffer.concat(body) }));
          stream.on('error', reject);
        });
      const json = await get('/s/json');
      assert.equal(json.headers['content-encoding'], 'gzip');
      assert.equal(json.headers['content-length'], undefined);
      assert.equal(zlib.gunzipSync(json.body).toString(), JSON_BODY);
      const sse = await get('/api/stream?n=2&interval=10');
      assert.equal(zlib.gunzipSync(sse.body).toString(), 'data: 0 from backend_1\n\ndata: 1 from backend_1\n\n');
    } finally {
      session.close();
    }
  });
});

describe('gzip configuration', { concurrency: 4 }, () => {
  const cfgDir = tempDir('fulcrum-gzip-cfg-');
  const cases: Array<{ name: string; body: string; line: number; message: RegExp }> = [
    { name: 'gzip maybe', body: 'gzip maybe;', line: 2, message: /invalid value "maybe" in "gzip" directive, it must be "on" or "off"/ },
    { name: 'gzip_comp_level 12', body: 'gzip on;\n  gzip_comp_level 12;', line: 3, message: /"gzip_comp_level" directive must be between 1 and 9/ },
    { name: 'gzip_proxied sometimes', body: 'gzip_proxied expired sometimes;', line: 2, message: /invalid value "sometimes" in "gzip_proxied" directive/ },
    { name: 'gzip_http_version 2.0', body: 'gzip_http_version 2.0;', line: 2, message: /invalid value "2.0" in "gzip_http_version" directive/ },
    { name: 'gzip_min_length lots', body: 'gzip_min_length lots;', line: 2, message: /"gzip_min_length" directive invalid value "lots"/ },
    { name: 'gzip_disable bad regex', body: 'gzip_disable "msie6" "(unclosed";', line: 2, message: /invalid regex "\(unclosed"/ },
    { name: 'gzip twice', body: 'gzip on;\n  gzip off;', line: 3, message: /"gzip" directive is duplicate/ },
  ];
  for (const c of cases) {
    test(`${c.name}: an error at file:${c.line}`, () => expectConfigError(cfgDir, c.name, `http {\n  ${c.body}\n  server { listen 127.0.0.1:1; return 204; }\n}\n`, c));
  }

  test("Debian's stock http-level gzip lines (commented ones included) pass `check`", async () => {
    const file = join(cfgDir, 'debian.conf');
    writeFileSync(
      file,
      `events { worker_connections 768; }
http {
  gzip on;
  gzip_disable "msie6";
  gzip_vary on;
  gzip_proxied any;
  gzip_comp_level 6;
  gzip_buffers 16 8k;
  gzip_http_version 1.1;
  gzip_types text/plain text/css application/json application/javascript text/xml application/xml application/xml+rss text/javascript;
  server {
    listen 127.0.0.1:1;
    location / { gzip_proxied expired no-cache no-store private no_last_modified no_etag auth; return 204; }
  }
}
`,
    );
    const r = await runFulcrum(['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
  });
});
