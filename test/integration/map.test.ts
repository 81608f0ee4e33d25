/**
 * nginx's `map`, as nginx documents it and as the same config gives on nginx
 * 1.22 (every expected value below was read from nginx with this config):
 * string keys ignoring case, `hostnames` masks (longest "*.x" / ".x", then
 * "x.*"), regexes in order with their captures in the value, `default`,
 * maps built from other maps; and the WebSocket config from nginx's own
 * documentation (`map $http_upgrade $connection_upgrade`) proxying both a
 * WebSocket and plain requests. Errors name the file, line and problem.
 * And an upgraded connection closes as nginx closes it: when either side
 * does, whether or not the other ever would.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { headerValues, readRequestHead, spawnBackends, startScriptedServer, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { websocketAccept } from '../../src/demo/backend.js';
import { openWebSocket } from '../support/streams.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';
import { sleep } from '../support/wait.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  backends = await spawnBackends(1);
  [port] = await freePorts(1);
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  map $http_host $name { hostnames; default 0; example.com 1; *.example.com 2; .example.net 3; wap.* 4; "~^(?<sub>[a-z]+)\\.regex\\.org$" "r-$sub"; }
  map $uri $new { default none; /aa A; ~^/old/(.*)$ /new/$1; ~*^/CASE CI; }
  map $name$new $chain { default "$name|$new"; }
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "conn=$connection_upgrade name=$name new=$new chain=$chain\\n"; }
    location /sock/ {
      proxy_pass http://app/;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
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

describe('map', { concurrency: 4 }, () => {
  const cases: Array<{ path: string; headers?: Record<string, string>; want: string }> = [
    { path: '/aa', want: 'conn=close name=0 new=A chain=0|A' },
    { path: '/old/x/y', headers: { upgrade: 'websocket', host: 'www.example.com' }, want: 'conn=upgrade name=2 new=/new/x/y chain=2|/new/x/y' },
    { path: '/case', headers: { host: 'EXAMPLE.com.' }, want: 'conn=close name=1 new=CI chain=1|CI' },
    { path: '/default', headers: { host: 'example.net' }, want: 'conn=close name=3 new=none chain=3|none' },
    { path: '/AA', headers: { host: 'wap.foo.io' }, want: 'conn=close name=4 new=A chain=4|A' },
    { path: '/x', headers: { host: 'abc.regex.org' }, want: 'conn=close name=r-abc new=none chain=r-abc|none' },
  ];
  for (const c of cases) {
    test(`${c.path} ${JSON.stringify(c.headers ?? {})}: ${c.want}`, async () => {
      const res = await request({ port, path: c.path, headers: c.headers });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), `${c.want}\n`);
    });
  }

  test('nginx\'s WebSocket config: an upgrade is proxied; a plain request works on the same location', async () => {
    const ws = await openWebSocket(port, '/sock/ws');
    try {
      assert.equal(await ws.echo('hello through a map'), 'hello through a map');
    } finally {
      ws.close();
    }
    const res = await request({ port, path: '/sock/whoami' });
    assert.equal(res.status, 200);
    // nginx would send "Connection: close" here; fulcrum manages upstream connections itself and keeps them alive (README, Known differences).
    const who = JSON.parse(res.body.toString()) as { headers: [string, string][] };
    assert.deepEqual(headerValues(who.headers, 'upgrade'), []);
  });
});

describe('upgraded connections', () => {
  test('a client that closes a WebSocket ends the tunnel, even if the backend never closes its side: a graceful stop is not held', async () => {
    let sawEnd!: () => void;
    const ended = new Promise<void>((r) => (sawEnd = r));
    const server = await startScriptedServer(async (socket) => {
      // Never ends its side by itself (Node would answer a FIN with its own otherwise).
      socket.allowHalfOpen = true;
      const head = await readRequestHead(socket);
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`);
      socket.on('end', () => sawEnd());
      socket.resume();
    });
    const [p] = await freePorts(1);
    const f = await startFulcrum({
      config: `events {}\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:${p};\n    location / { proxy_pass http://127.0.0.1:${server.port}; proxy_read_timeout 300s; }\n  }\n}\n`,
    });
    try {
      const ws = await openWebSocket(p!, '/ws');
      ws.close();
      await Promise.race([ended, sleep(3000).then(() => assert.fail('the backend was not told the client left'))]);
      // nginx closes an upgraded connection once either side has; one kept half-open would hold the stop for worker_shutdown_timeout (30 s).
      const started = Date.now();
      assert.equal(await f.stop('SIGTERM', 5000), 0);
      assert.ok(Date.now() - started < 3000, `stop took ${Date.now() - started} ms`);
    } finally {
      await f.kill();
      await server.close();
    }
  });
});

describe('map errors', { concurrency: 4 }, () => {
  const dir = tempDir('fulcrum-map-');
  const cases: Array<{ name: string; body: string; line: number; message: RegExp }> = [
    { name: 'a variable defined twice', body: 'map $uri $a { default 1; }\n  map $uri $a { default 2; }', line: 3, message: /the duplicate "a" variable/ },
    { name: 'a built-in variable redefined', body: 'map $uri $host { default 1; }', line: 2, message: /the duplicate "host" variable/ },
    { name: 'an unknown variable in a value', body: 'map $uri $a {\n    /x $nope;\n  }', line: 3, message: /unknown "nope" variable/ },
    { name: 'a bad regex', body: 'map $uri $a {\n    ~^(x 1;\n  }', line: 3, message: /invalid regular expression "~\^\(x"/ },
    { name: 'a repeated key', body: 'map $uri $a {\n    /x 1;\n    /X 2;\n  }', line: 4, message: /conflicting parameter "\/X"/ },
    { name: 'a key without a value', body: 'map $uri $a {\n    /x;\n  }', line: 3, message: /invalid number of the map parameters/ },
    { name: 'not a variable', body: 'map $uri a { default 1; }', line: 2, message: /invalid variable name "a"/ },
  ];
  for (const c of cases) {
    test(c.name, () => expectConfigError(dir, c.name, `http {\n  ${c.body}\n  server { listen 127.0.0.1:1; return 204; }\n}\n`, c));
  }
});
