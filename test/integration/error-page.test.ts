/**
 * nginx's error_page: the custom page for errors fulcrum makes itself (a dead
 * upstream's 502, a missing file's 404, `return 404`), with the error's
 * status, `=CODE` and `=` overrides, redirects to URLs, inheritance (a level
 * with its own error_page keeps none of its parent's), one redirect per
 * request, HEAD and POST; with proxy_intercept_errors, upstream errors too. Every expectation was read from nginx 1.22 with
 * the same config.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let fulcrum: FulcrumProcess;
let backends: TestBackends;
let port: number;
let deadPort: number;

before(async () => {
  backends = await spawnBackends(1);
  [port, deadPort] = await freePorts(2);
  const html = join(tempDir('fulcrum-error-page-'), 'html');
  mkdirSync(html);
  writeFileSync(join(html, '50x.html'), '<h1>custom 50x</h1>\n');
  writeFileSync(join(html, '404.html'), '<h1>custom 404</h1>\n');
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  upstream dead { server 127.0.0.1:${deadPort}; }
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server {
    listen 127.0.0.1:${port};
    error_page 500 502 503 504 /50x.html;
    error_page 404 /404.html;
    location = /50x.html { root ${html}; }
    location = /404.html { root ${html}; }
    location /api/ { proxy_pass http://dead; }
    location /static/ { root ${html}; }
    location /gone { return 404; }
    location /json { error_page 502 =200 /fallback.json; proxy_pass http://dead; }
    location = /fallback.json { default_type application/json; return 200 '{"fallback":true}'; }
    location /any-status { error_page 502 = /fallback.json; proxy_pass http://dead; }
    location /ext { error_page 502 https://status.example.com/; proxy_pass http://dead; }
    location /ext301 { error_page 502 =301 https://status.example.com/down; proxy_pass http://dead; }
    location /missing { error_page 502 /nowhere.html; proxy_pass http://dead; }
    location /own { error_page 503 /50x.html; proxy_pass http://dead; }
    location /loop { error_page 404 /loop-page; return 404; }
    location = /loop-page { return 404; }
    location /intercept/ { proxy_intercept_errors on; error_page 503 /50x.html; proxy_pass http://app/; }
    location /passthrough/ { error_page 503 /50x.html; proxy_pass http://app/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

describe('error_page', { concurrency: 4 }, () => {
  const cases: Array<{ name: string; path: string; method?: string; body?: string; status: number; location?: string; contentType?: string; text: RegExp }> = [
    { name: 'a dead upstream: the custom page with status 502', path: '/api/x', status: 502, contentType: 'text/html', text: /^<h1>custom 50x<\/h1>\n$/ },
    { name: 'a missing static file: the custom 404', path: '/static/nope', status: 404, text: /custom 404/ },
    { name: '`return 404`: the custom 404', path: '/gone', status: 404, text: /custom 404/ },
    { name: '=200 with a return location', path: '/json', status: 200, contentType: 'application/json', text: /^\{"fallback":true\}$/ },
    { name: '"=": the page handler\'s status', path: '/any-status', status: 200, text: /fallback/ },
    { name: 'a URL: 302 to it', path: '/ext', status: 302, location: 'https://status.example.com/', text: /302 Found/ },
    { name: 'a URL with =301', path: '/ext301', status: 301, location: 'https://status.example.com/down', text: /301 Moved Permanently/ },
    { name: 'a page URI no location matches: 404, built-in', path: '/missing', status: 404, text: /<title>404 Not Found<\/title>/ },
    { name: 'a location\'s own error_page replaces the server\'s (502 not listed there: built-in)', path: '/own', status: 502, text: /<title>502 Bad Gateway<\/title>/ },
    { name: 'an error page that errors itself: the built-in page, no loop', path: '/loop', status: 404, text: /<title>404 Not Found<\/title>/ },
    { name: 'POST: the page is fetched with GET (no 405)', path: '/api/x', method: 'POST', body: 'abc', status: 502, text: /custom 50x/ },
    { name: 'the page itself, asked for directly: 200', path: '/50x.html', status: 200, text: /custom 50x/ },
    { name: 'proxy_intercept_errors on: the upstream\'s 503 is replaced by the page', path: '/intercept/status/503', status: 503, text: /^<h1>custom 50x<\/h1>\n$/ },
    { name: 'proxy_intercept_errors on: a code without an error_page passes as the upstream sent it', path: '/intercept/status/500', status: 500, text: /^(?!<h1>custom)/ },
    { name: 'proxy_intercept_errors on: success passes', path: '/intercept/hello', status: 200, text: /Hello from backend_1/ },
    { name: 'proxy_intercept_errors off (the default): the upstream\'s 503 passes', path: '/passthrough/status/503', status: 503, text: /^(?!<h1>custom)/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const res = await request({ port, path: c.path, method: c.method, body: c.body });
      assert.equal(res.status, c.status, res.body.toString());
      if (c.location !== undefined) assert.equal(res.headers.location, c.location);
      if (c.contentType !== undefined) assert.equal(res.headers['content-type'], c.contentType);
      assert.match(res.body.toString(), c.text);
    });
  }

  test('HEAD: the error page\'s headers and status, no body', async () => {
    const res = await request({ port, path: '/api/x', method: 'HEAD' });
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-length'], String('<h1>custom 50x</h1>\n'.length));
    assert.equal(res.body.length, 0);
  });
});

describe('error_page errors', { concurrency: 4 }, () => {
  const dir = tempDir('fulcrum-error-page-');
  const cases: Array<{ name: string; directive: string; message: RegExp }> = [
    { name: 'a code below 300', directive: 'error_page 200 /x.html;', message: /value "200" must be between 300 and 599/ },
    { name: 'a bad =response', directive: 'error_page 502 =abc /x.html;', message: /invalid value "=abc"/ },
    { name: 'no code', directive: 'error_page =200 /x.html;', message: /invalid number of arguments in "error_page"/ },
    { name: 'an unknown variable', directive: 'error_page 502 /x.html?from=$nope;', message: /unknown "nope" variable/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(dir, c.name, `http {\n  server {\n    listen 127.0.0.1:1;\n    ${c.directive}\n    return 204;\n  }\n}\n`, { line: 4, message: c.message }));
  }
});
