/**
 * nginx's realip module: from a trusted address (set_real_ip_from) the
 * client address comes from X-Real-IP or X-Forwarded-For, read from the
 * right; real_ip_recursive skips trusted addresses; an untrusted connection's
 * header is ignored. The address replaces $remote_addr everywhere: allow/deny,
 * $proxy_add_x_forwarded_for and X-Real-IP sent upstream as in the seed
 * config. The expectations were read from nginx 1.22 on the same requests
 * (e.g. "203.0.113.9, 10.0.0.5, 127.0.0.2" gives 127.0.0.2 without recursion;
 * repeated X-Forwarded-For fields are walked last field first; a port in the
 * header becomes $remote_port, none gives an empty $remote_port; a location's
 * real_ip_recursive does not redo what the server level already set).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBackends, headerValues, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { rawRequest, request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let plain: number;
let recursive: number;
let untrusted: number;
let realIp: number;

before(async () => {
  backends = await spawnBackends(1);
  [plain, recursive, untrusted, realIp] = await freePorts(4);
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  proxy_set_header X-Real-IP $remote_addr;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  server {
    listen 127.0.0.1:${plain};
    set_real_ip_from 127.0.0.0/8;
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    location / { return 200 "$remote_addr|$realip_remote_addr|$remote_port|$proxy_add_x_forwarded_for\\n"; }
    location /rec/ { real_ip_recursive on; return 200 "$remote_addr|$realip_remote_addr\\n"; }
    location /app/ { proxy_pass http://app/; }
  }
  server {
    listen 127.0.0.1:${recursive};
    set_real_ip_from 127.0.0.0/8;
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / { return 200 "$remote_addr|$realip_remote_addr|$remote_port\\n"; }
    location /guarded/ { deny 203.0.113.0/24; proxy_pass http://app/; }
  }
  server {
    listen 127.0.0.1:${untrusted};
    set_real_ip_from 192.0.2.1;
    location / { return 200 "$remote_addr\\n"; }
  }
  server {
    listen 127.0.0.1:${realIp};
    set_real_ip_from 127.0.0.1;
    location / { return 200 "$remote_addr|$remote_port\\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

async function text(port: number, path: string, headers: Record<string, string | string[]> = {}): Promise<string> {
  return (await request({ port, path, headers })).body.toString();
}

describe('realip', () => {
  test('X-Forwarded-For without recursion: the last address', async () => {
    assert.equal(await text(plain, '/', { 'x-forwarded-for': '203.0.113.9, 10.0.0.5, 127.0.0.2' }), '127.0.0.2|127.0.0.1||203.0.113.9, 10.0.0.5, 127.0.0.2, 127.0.0.2\n');
    // The server level already set the address: the location's real_ip_recursive does not run again (nginx's ctx check).
    assert.equal(await text(plain, '/rec/', { 'x-forwarded-for': '203.0.113.9, 10.0.0.5, 127.0.0.2' }), '127.0.0.2|127.0.0.1\n');
    // Nothing usable: the connection's address stays.
    assert.match(await text(plain, '/', { 'x-forwarded-for': 'garbage' }), /^127\.0\.0\.1\|127\.0\.0\.1\|\d+\|garbage, 127\.0\.0\.1\n$/);
  });

  test('real_ip_recursive: trusted addresses are skipped, repeated fields read last first, a port becomes $remote_port', async () => {
    assert.equal(await text(recursive, '/', { 'x-forwarded-for': '203.0.113.9, 10.0.0.5, 127.0.0.2' }), '203.0.113.9|127.0.0.1|\n');
    const raw = await rawRequest(
      recursive,
      'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.5\r\nX-Forwarded-For: 10.0.0.6\r\nConnection: close\r\n\r\n',
    );
    assert.match(raw.data.toString(), /\r\n\r\n203\.0\.113\.9\|127\.0\.0\.1\|\n$/);
    assert.equal(await text(recursive, '/', { 'x-forwarded-for': '198.51.100.1, 203.0.113.9:8080' }), '203.0.113.9|127.0.0.1|8080\n');
  });

  test('an untrusted connection\'s header is ignored; X-Real-IP is the default header, IPv6 comes back as nginx prints it', async () => {
    assert.equal(await text(untrusted, '/', { 'x-real-ip': '203.0.113.9' }), '127.0.0.1\n');
    assert.equal(await text(realIp, '/', { 'x-real-ip': '203.0.113.9' }), '203.0.113.9|\n');
    assert.equal(await text(realIp, '/', { 'x-real-ip': '[2001:DB8::1]:99' }), '2001:db8::1|99\n');
  });

  test('allow/deny see the real address; upstream gets it in X-Real-IP and X-Forwarded-For', async () => {
    assert.equal((await request({ port: recursive, path: '/guarded/hello', headers: { 'x-forwarded-for': '203.0.113.7' } })).status, 403);
    assert.equal((await request({ port: recursive, path: '/guarded/hello', headers: { 'x-forwarded-for': '198.51.100.7' } })).status, 200);
    const res = await request({ port: plain, path: '/app/whoami', headers: { 'x-forwarded-for': '198.51.100.7, 10.0.0.5' } });
    const body = JSON.parse(res.body.toString()) as { headers: [string, string][] };
    assert.deepEqual(headerValues(body.headers, 'x-real-ip'), ['10.0.0.5']);
    assert.deepEqual(headerValues(body.headers, 'x-forwarded-for'), ['198.51.100.7, 10.0.0.5, 10.0.0.5']);
  });
});

describe('realip config errors', () => {
  const dir = tempDir('fulcrum-real-ip-errors-');
  const cases = [
    { name: 'bad CIDR', directive: 'set_real_ip_from 10.0.0.0/33;', message: /invalid address or CIDR "10\.0\.0\.0\/33"/ },
    { name: 'not an address', directive: 'set_real_ip_from proxy.example;', message: /invalid address or CIDR "proxy\.example"/ },
    { name: 'proxy_protocol', directive: 'real_ip_header proxy_protocol;', message: /not supported: fulcrum has no PROXY protocol listener/ },
    { name: 'bad recursive flag', directive: 'real_ip_recursive yes;', message: /it must be "on" or "off"/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(dir, c.name, `http {\n  server {\n    listen 127.0.0.1:1;\n    ${c.directive}\n    return 204;\n  }\n}\n`, { line: 4, message: c.message }));
  }
});
