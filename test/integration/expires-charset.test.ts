/**
 * nginx's expires and charset on fulcrum's own responses (return, error
 * pages, static files) and on proxied ones, and etag off. Expectations read
 * from Debian's nginx 1.22: `expires 1h` -> Expires now+1h and
 * "Cache-Control: max-age=3600"; `-1` -> now-1s and "no-cache"; epoch ->
 * "Thu, 01 Jan 1970 00:00:01 GMT" and "no-cache"; max -> "Thu, 31 Dec 2037
 * 23:55:55 GMT" and "max-age=315360000"; `@15h30m` -> the next 15:30 local;
 * none on a 404; a proxied response's own Expires and every Cache-Control
 * replaced; charset added to text/plain, text/html (error pages too) and to a
 * type named in charset_types, never to a 301/302 nor to a type outside
 * charset_types, nor where the upstream named a charset.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startScriptedServer, readRequestHead, type ScriptedServer } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let backend: ScriptedServer;
let fulcrum: FulcrumProcess;
let port: number;
let root: string;

before(async () => {
  backend = await startScriptedServer(async (socket) => {
    const head = await readRequestHead(socket);
    const path = head.split(' ')[1]!;
    const type = path.includes('latin') ? 'text/html; charset=iso-8859-1' : path.includes('json') ? 'application/json' : 'text/html';
    socket.end(`HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nExpires: Thu, 01 Jan 2000 00:00:00 GMT\r\nCache-Control: private\r\nCache-Control: must-revalidate\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`);
  });
  [port] = await freePorts(1);
  root = tempDir();
  mkdirSync(join(root, 'files'));
  writeFileSync(join(root, 'files', 'a.txt'), 'abc');
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /e1 { expires 1h; return 200 "x"; }
    location /e2 { expires -1; return 200 "x"; }
    location /e3 { expires epoch; return 200 "x"; }
    location /e4 { expires max; return 200 "x"; }
    location /e5 { expires @15h30m; return 200 "x"; }
    location /e6 { expires 1h; return 404; }
    location /e7 { expires 1h; add_header X-A 1; return 301 /x; }
    location /e8 { expires 1h; location /e8/off { expires off; return 200 "x"; } return 200 "x"; }
    location /files/ { expires modified 1h; charset utf-8; }
    location /noetag/ { etag off; alias ${root}/files/; }
    location /c1 { charset utf-8; return 200 "x"; }
    location /c2 { charset utf-8; default_type application/json; return 200 "x"; }
    location /c3 { charset UTF-8; return 404; }
    location /c4 { charset UTF-8; charset_types application/json; default_type application/json; return 200 "x"; }
    location /c5 { charset UTF-8; return 301 /x; }
    location /px/ { expires 1h; charset utf-8; proxy_pass http://127.0.0.1:${backend.port}/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backend?.close();
});

function get(path: string, headers: Record<string, string> = {}) {
  return request({ port, path, headers });
}

function secondsFromNow(httpDate: string | undefined): number {
  return Math.round((Date.parse(String(httpDate)) - Date.now()) / 1000);
}

describe('expires', () => {
  test('a time: Expires and max-age; negative: no-cache; epoch; max', async () => {
    const e1 = await get('/e1');
    assert.equal(e1.headers['cache-control'], 'max-age=3600');
    assert.ok(Math.abs(secondsFromNow(e1.headers.expires) - 3600) <= 2);
    const e2 = await get('/e2');
    assert.equal(e2.headers['cache-control'], 'no-cache');
    assert.ok(Math.abs(secondsFromNow(e2.headers.expires) + 1) <= 2);
    const e3 = await get('/e3');
    assert.equal(e3.headers.expires, 'Thu, 01 Jan 1970 00:00:01 GMT');
    assert.equal(e3.headers['cache-control'], 'no-cache');
    const e4 = await get('/e4');
    assert.equal(e4.headers.expires, 'Thu, 31 Dec 2037 23:55:55 GMT');
    assert.equal(e4.headers['cache-control'], 'max-age=315360000');
  });

  test('@15h30m: the next 15:30, local time', async () => {
    const e5 = await get('/e5');
    const at = new Date(Date.parse(String(e5.headers.expires)));
    assert.equal(at.getHours() * 60 + at.getMinutes(), 15 * 60 + 30);
    const maxAge = Number(/^max-age=(\d+)$/.exec(String(e5.headers['cache-control']))![1]);
    assert.ok(maxAge > 0 && maxAge <= 86400 && Math.abs(maxAge - secondsFromNow(e5.headers.expires)) <= 2);
  });

  test('not on a 404; on a redirect, before add_header; off in an inner location', async () => {
    assert.equal((await get('/e6')).headers.expires, undefined);
    const e7 = await get('/e7');
    assert.equal(e7.status, 301);
    assert.equal(e7.headers['cache-control'], 'max-age=3600');
    const names = e7.rawHeaders.filter((_, i) => i % 2 === 0);
    assert.ok(names.indexOf('Expires') < names.indexOf('X-A'), names.join());
    assert.equal((await get('/e8')).headers['cache-control'], 'max-age=3600');
    assert.equal((await get('/e8/off')).headers['cache-control'], undefined);
  });

  test('modified: counted from the file\'s Last-Modified', async () => {
    const res = await get('/files/a.txt');
    assert.equal(res.status, 200);
    const expected = Date.parse(String(res.headers['last-modified'])) + 3600_000;
    assert.equal(Date.parse(String(res.headers.expires)), expected);
    assert.equal(res.headers['cache-control'], `max-age=${Math.round((expected - Date.parse(String(res.headers.date))) / 1000)}`);
  });

  test('a proxied response\'s own Expires and Cache-Control are replaced', async () => {
    const res = await get('/px/page');
    assert.equal(res.body.toString(), 'hi');
    assert.equal(res.headers['cache-control'], 'max-age=3600');
    assert.equal(res.rawHeaders.filter((h) => h.toLowerCase() === 'cache-control').length, 1);
    assert.ok(Math.abs(secondsFromNow(res.headers.expires) - 3600) <= 2);
  });
});

describe('charset', () => {
  test('added to text types, error pages and charset_types; not to others nor to 301', async () => {
    assert.equal((await get('/c1')).headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal((await get('/c2')).headers['content-type'], 'application/json');
    assert.equal((await get('/c3')).headers['content-type'], 'text/html; charset=UTF-8');
    assert.equal((await get('/c4')).headers['content-type'], 'application/json; charset=UTF-8');
    assert.equal((await get('/c5')).headers['content-type'], 'text/html');
    assert.equal((await get('/files/a.txt')).headers['content-type'], 'text/plain; charset=utf-8');
  });

  test('proxied: added unless the upstream named a charset or the type is not listed', async () => {
    assert.equal((await get('/px/page')).headers['content-type'], 'text/html; charset=utf-8');
    assert.equal((await get('/px/latin')).headers['content-type'], 'text/html; charset=iso-8859-1');
    assert.equal((await get('/px/json')).headers['content-type'], 'application/json');
  });
});

describe('etag', () => {
  test('etag off: no ETag, and If-None-Match never gives 304', async () => {
    const on = await get('/files/a.txt');
    assert.ok(on.headers.etag !== undefined);
    assert.equal((await get('/files/a.txt', { 'If-None-Match': String(on.headers.etag) })).status, 304);
    const off = await get('/noetag/a.txt');
    assert.equal(off.status, 200);
    assert.equal(off.headers.etag, undefined);
    assert.equal((await get('/noetag/a.txt', { 'If-None-Match': String(on.headers.etag) })).status, 200);
  });
});

describe('config errors (nginx\'s messages)', () => {
  test('bad expires, charset recoding', async () => {
    const dir = tempDir();
    const conf = (body: string) => `events {}\nhttp {\n  server {\n    ${body}\n  }\n}\n`;
    await expectConfigError(dir, 'expires-bad', conf('expires soon;'), { line: 4, message: /invalid value "soon"/ });
    await expectConfigError(dir, 'expires-modified-daily', conf('expires modified @10h;'), { line: 4, message: /daily time cannot be used with "modified" parameter/ });
    await expectConfigError(dir, 'expires-daily-25h', conf('expires @25h;'), { line: 4, message: /daily time value must be less than 24 hours/ });
    await expectConfigError(dir, 'source-charset', conf('source_charset koi8-r;'), { line: 4, message: /recoding is not supported/ });
    await expectConfigError(dir, 'expires-dup', conf('expires 1h; expires 2h;'), { line: 4, message: /"expires" directive is duplicate/ });
  });
});
