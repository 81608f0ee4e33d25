/**
 * nginx's try_files and named locations, as Debian's default site and the
 * usual "static if it exists, else the app" setups use them. Every
 * expectation was read from nginx 1.22 with the same config and files:
 * `$uri $uri/ =404` (a directory without its slash is redirected, as nginx
 * does), an SPA fallback to /app/index.html, `$uri @backend` proxying what is
 * not a file (a POST body included), a fallback URI with its own arguments,
 * and a fallback loop ending in 500.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  backends = await spawnBackends(1);
  [port] = await freePorts(1);
  const www = join(tempDir('fulcrum-try-files-'), 'www');
  for (const d of ['app', 'dir', 'api']) mkdirSync(join(www, d), { recursive: true });
  writeFileSync(join(www, 'index.html'), 'root-index\n');
  writeFileSync(join(www, 'app', 'index.html'), 'app-index\n');
  writeFileSync(join(www, 'a.txt'), 'file-a\n');
  writeFileSync(join(www, 'dir', 'index.html'), 'dir-index\n');
  writeFileSync(join(www, 'api', 's.txt'), 'static-api\n');
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port};
    root ${www};
    index index.html;
    location / { try_files $uri $uri/ =404; }
    location /app/ { try_files $uri /app/index.html; }
    location /api/ { try_files $uri @backend; }
    location @backend { proxy_pass http://127.0.0.1:${backends.ports[0]}; }
    location /loop { try_files /nope /loop; }
    location /redir { try_files /nope /a.txt?x=1; }
    location /args-fallback { try_files /nope /show; }
    location = /show { return 200 "uri=$uri args=$args\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

describe('try_files', { concurrency: 4 }, () => {
  const cases: Array<{ path: string; status: number; body: RegExp; location?: string }> = [
    { path: '/', status: 200, body: /^root-index\n$/ },
    { path: '/a.txt', status: 200, body: /^file-a\n$/ },
    { path: '/dir', status: 301, body: /301 Moved Permanently/, location: '/dir/' },
    { path: '/dir/', status: 200, body: /^dir-index\n$/ },
    { path: '/nope', status: 404, body: /404 Not Found/ },
    { path: '/app/x/y', status: 200, body: /^app-index\n$/ },
    { path: '/app/index.html', status: 200, body: /^app-index\n$/ },
    { path: '/api/s.txt', status: 200, body: /^static-api\n$/ },
    { path: '/api/hello', status: 200, body: /^Hello from backend_1/ },
    { path: '/loop', status: 500, body: /500 Internal Server Error/ },
    { path: '/redir', status: 200, body: /^file-a\n$/ },
    // nginx: a fallback URI brings its own arguments or none; the request's are not kept.
    { path: '/args-fallback?a=1', status: 200, body: /^uri=\/show args=\n$/ },
  ];
  for (const c of cases) {
    test(`${c.path}: ${c.status}`, async () => {
      const res = await request({ port, path: c.path });
      assert.equal(res.status, c.status, res.body.toString());
      assert.match(res.body.toString(), c.body);
      if (c.location !== undefined) assert.equal(res.headers.location, `http://127.0.0.1:${port}${c.location}`);
    });
  }

  test('a POST that is not a file goes to the named location with its whole body', async () => {
    const body = 'p'.repeat(300_000);
    const res = await request({ port, path: '/api/echo', method: 'POST', body });
    assert.equal(res.status, 200);
    const echoed = JSON.parse(res.body.toString()) as { method: string; url: string; bytes: number; sha256: string };
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.url, '/api/echo');
    assert.equal(echoed.bytes, body.length);
    assert.equal(echoed.sha256, createHash('sha256').update(body).digest('hex'));
  });

  test('a request cannot leave the root through a candidate', async () => {
    const res = await request({ port, path: '/..%2f..%2fetc/passwd' });
    assert.ok(res.status === 400 || res.status === 404, `status ${res.status}`);
  });
});

describe('try_files and named location errors', { concurrency: 4 }, () => {
  const dir = tempDir('fulcrum-try-files-');
  const cases: Array<{ name: string; server: string; message: RegExp }> = [
    { name: 'a named location nobody defines', server: 'location / { try_files $uri @nowhere; }', message: /no location "@nowhere" in this server/ },
    { name: 'a bad code', server: 'location / { try_files $uri =abc; }', message: /invalid code "=abc"/ },
    { name: 'a named location inside a location', server: 'location / { location @x { return 204; } }', message: /named location "@x" can be on the server level only/ },
    { name: 'a named location with alias', server: 'location @x { alias /tmp/; }', message: /"alias" cannot be used inside the named location "@x"/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(dir, c.name, `http {\n  server {\n    listen 127.0.0.1:1;\n    ${c.server}\n  }\n}\n`, { line: 4, message: c.message }));
  }
});
