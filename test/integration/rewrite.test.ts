/**
 * nginx's rewrite module: `rewrite` (last, break, redirect, permanent, no
 * flag; arguments added, replaced with a final "?", kept on redirects),
 * `if` (=, !=, ~, ~*, a bare variable, -f and !-e file tests, captures),
 * `set` (usable in other directives), `break`, `return` in order among them,
 * at the server and the location level; a rewritten URI goes upstream as it
 * is (proxy_pass's URI part ignored), a rewrite cycle is a 500. Every
 * expectation was read from nginx 1.22 with the same config.
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

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  backends = await spawnBackends(1);
  [port] = await freePorts(1);
  const www = tempDir('fulcrum-rewrite-');
  mkdirSync(join(www, 'html'));
  writeFileSync(join(www, 'html', 'a.txt'), 'a\n');
  const backend = `127.0.0.1:${backends.ports[0]}`;
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port};
    set $who server;
    if ($request_method = OPTIONS) { return 204; }
    if ($http_x_force_https) { return 301 https://$host$request_uri; }
    rewrite ^/old/(.*)$ /new/$1 last;
    rewrite ^/perm/(.*)$ /moved/$1 permanent;
    rewrite ^/ext/(.*)$ https://example.com/$1;
    rewrite ^/args$ /show?a=1;
    rewrite ^/argsq$ /show?b=2?;
    location /new/ { return 200 "new uri=$uri args=$args who=$who\\n"; }
    location /show { return 200 "show uri=$uri args=$args\\n"; }
    location /loc/ {
      set $who location;
      rewrite ^/loc/a/(.*)$ /loc/b/$1;
      rewrite ^/loc/b/(.*)$ /new/$1 break;
      return 200 "loc uri=$uri who=$who\\n";
    }
    location /cyc { rewrite ^ /cyc2 last; }
    location /cyc2 { rewrite ^ /cyc last; }
    location /ua { if ($http_user_agent ~* "(bot|crawler)") { return 403; } if ($http_user_agent ~ ^Mozilla/(\\d+)) { set $v $1; } return 200 "ua v=$v\\n"; }
    location /file { if (-f ${join(www, 'html', 'a.txt')}) { return 200 "exists\\n"; } return 200 "missing\\n"; }
    location /nofile { if (!-e ${join(www, 'nothing')}) { return 200 "absent\\n"; } return 200 "present\\n"; }
    location /api/ { rewrite ^/api/(.*)$ /$1 break; proxy_pass http://${backend}; }
    location /v2/ { rewrite ^/v2/(.*)$ /api/$1 break; proxy_pass http://${backend}/ignored/; }
    location /tag { set $tag "t-$arg_id"; proxy_set_header X-Tag $tag; proxy_pass http://${backend}/whoami; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

describe('rewrite, if, set', { concurrency: 4 }, () => {
  const cases: Array<{ path: string; method?: string; headers?: Record<string, string>; status: number; location?: string; body?: RegExp }> = [
    { path: '/old/x?q=1', status: 200, body: /^new uri=\/new\/x args=q=1 who=server\n$/ },
    { path: '/perm/y?z=2', status: 301, location: `/moved/y?z=2` },
    { path: '/ext/p?k=v', status: 302, location: 'https://example.com/p?k=v' },
    { path: '/args?o=9', status: 200, body: /^show uri=\/show args=a=1&o=9\n$/ },
    { path: '/argsq?o=9', status: 200, body: /^show uri=\/show args=b=2\n$/ },
    // `break` stops the rewrite module before the location's `return`: its (absent) files answer.
    { path: '/loc/a/1', status: 404 },
    { path: '/cyc', status: 500 },
    { path: '/ua', headers: { 'user-agent': 'SomeBot/1' }, status: 403 },
    { path: '/ua', headers: { 'user-agent': 'Mozilla/5.0' }, status: 200, body: /^ua v=5\n$/ },
    { path: '/file', status: 200, body: /^exists\n$/ },
    { path: '/nofile', status: 200, body: /^absent\n$/ },
    { path: '/new/h', method: 'OPTIONS', status: 204 },
    { path: '/new/h', headers: { 'x-force-https': '1' }, status: 301, location: 'https://127.0.0.1/new/h' },
  ];
  for (const c of cases) {
    test(`${c.method ?? 'GET'} ${c.path} ${JSON.stringify(c.headers ?? {})}: ${c.status}`, async () => {
      const res = await request({ port, path: c.path, method: c.method, headers: c.headers });
      assert.equal(res.status, c.status, res.body.toString());
      if (c.location !== undefined) assert.equal(res.headers.location, c.location.startsWith('/') ? `http://127.0.0.1:${port}${c.location}` : c.location);
      if (c.body !== undefined) assert.match(res.body.toString(), c.body);
    });
  }

  const upstream: Array<{ path: string; url: string; tag?: string }> = [
    { path: '/api/whoami?x=1', url: '/whoami?x=1' },
    { path: '/v2/whoami?y=2', url: '/api/whoami?y=2' },
    { path: '/tag?id=7', url: '/whoami?id=7', tag: 't-7' },
  ];
  for (const c of upstream) {
    test(`${c.path} reaches the backend as ${c.url}`, async () => {
      const res = await request({ port, path: c.path });
      assert.equal(res.status, 200);
      const who = JSON.parse(res.body.toString()) as { url: string; headers: [string, string][] };
      assert.equal(who.url, c.url);
      if (c.tag !== undefined) assert.deepEqual(who.headers.filter(([k]) => k.toLowerCase() === 'x-tag').map(([, v]) => v), [c.tag]);
    });
  }
});

describe('rewrite module errors', { concurrency: 4 }, () => {
  const dir = tempDir('fulcrum-rewrite-');
  const cases: Array<{ name: string; directive: string; message: RegExp }> = [
    { name: 'a bad flag', directive: 'rewrite ^/a /b forever;', message: /invalid parameter "forever"/ },
    { name: 'a bad regex', directive: 'rewrite ^/(a /b;', message: /invalid regular expression "\^\/\(a"/ },
    { name: 'a condition without parentheses', directive: 'if $host { return 204; }', message: /it must be in parentheses/ },
    { name: 'a bad condition', directive: 'if ($host <> x) { return 204; }', message: /invalid condition/ },
    { name: 'proxy_pass inside if', directive: 'if ($host) { proxy_pass http://127.0.0.1:1; }', message: /"proxy_pass" directive is not allowed inside "if"/ },
    { name: 'set of a built-in variable', directive: 'set $host x;', message: /the built-in variable "host" cannot be changed with set/ },
    { name: 'set of a bad name', directive: 'set host x;', message: /invalid variable name "host"/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(dir, c.name, `http {\n  server {\n    listen 127.0.0.1:1;\n    location / {\n      ${c.directive}\n      return 204;\n    }\n  }\n}\n`, { message: c.message }));
  }
});
