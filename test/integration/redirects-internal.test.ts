/**
 * absolute_redirect, port_in_redirect, server_name_in_redirect on the
 * Location of return, rewrite ... redirect and static directory redirects;
 * `internal` locations, reachable by try_files, error_page and rewrite but
 * not by a client; http2_max_concurrent_streams and the obsolete http2_*
 * timeouts. Read from Debian's nginx 1.22: `return 301 /x` -> Location
 * "http://127.0.0.1:PORT/x"; absolute_redirect off -> "/x"; port_in_redirect
 * off -> "http://127.0.0.1/x" (Host "foo.example:99" -> "http://foo.example/x");
 * a client's request for an internal location -> 404, the same URI reached
 * by `rewrite ^ /int last` -> 200.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { makeCA, signCert } from '../support/certs.js';
import { join } from 'node:path';
import { startFulcrum, runFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let fulcrum: FulcrumProcess;
let port: number;
let root: string;

before(async () => {
  [port] = await freePorts(1);
  root = tempDir();
  mkdirSync(join(root, 'dir'));
  writeFileSync(join(root, 'dir', 'index.html'), 'index');
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port};
    server_name primary.example other.example;
    root ${root};
    location /r { return 301 /x; }
    location /ra { absolute_redirect off; return 301 /x; }
    location /rp { port_in_redirect off; return 301 /x; }
    location /rs { server_name_in_redirect on; return 302 /x; }
    location /rw { absolute_redirect off; rewrite ^ /y redirect; }
    location /dir { absolute_redirect off; }
    location /int { internal; return 200 "internal"; }
    location /via-rewrite { rewrite ^ /int last; }
    location /via-try { try_files /missing /int; }
    location /via-error { error_page 404 /int; return 404; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
});

function get(path: string, host?: string) {
  return request({ port, path, headers: host === undefined ? {} : { Host: host } });
}

describe('redirects', () => {
  test('absolute by default, with the port; relative with absolute_redirect off', async () => {
    assert.equal((await get('/r')).headers.location, `http://127.0.0.1:${port}/x`);
    assert.equal((await get('/ra')).headers.location, '/x');
    assert.equal((await get('/rw')).headers.location, '/y');
    const dir = await get('/dir');
    assert.equal(dir.status, 301);
    assert.equal(dir.headers.location, '/dir/');
  });

  test('port_in_redirect off; server_name_in_redirect on uses the first server_name', async () => {
    assert.equal((await get('/rp')).headers.location, 'http://127.0.0.1/x');
    assert.equal((await get('/rp', 'foo.example:99')).headers.location, 'http://foo.example/x');
    assert.equal((await get('/rs', 'other.example')).headers.location, `http://primary.example:${port}/x`);
    assert.equal((await get('/r', 'other.example')).headers.location, `http://other.example:${port}/x`);
  });
});

describe('internal', () => {
  test('a client gets 404; rewrite, try_files and error_page reach it', async () => {
    assert.equal((await get('/int')).status, 404);
    for (const path of ['/via-rewrite', '/via-try']) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.body.toString(), 'internal');
    }
    const viaError = await get('/via-error');
    assert.equal(viaError.status, 404);
    assert.equal(viaError.body.toString(), 'internal');
  });

  test('internal takes no argument and only goes in a location', async () => {
    const dir = tempDir();
    await expectConfigError(dir, 'internal-arg', 'events {}\nhttp {\n  server {\n    location / { internal on; }\n  }\n}\n', { line: 4, message: /invalid number of arguments in "internal"/ });
    await expectConfigError(dir, 'internal-server', 'events {}\nhttp {\n  server {\n    internal;\n  }\n}\n', { line: 4, message: /"internal" directive is not allowed here/ });
  });
});

describe('http2 settings', () => {
  test('http2_max_concurrent_streams is accepted; http2_idle_timeout and http2_recv_timeout warn that they are obsolete', async () => {
    const dir = tempDir();
    const file = join(dir, 'h2.conf');
    writeFileSync(file, `events {}\nhttp {\n  http2_max_concurrent_streams 64;\n  server {\n    listen 127.0.0.1:${port};\n    http2_max_concurrent_streams 32;\n    http2_idle_timeout 3m;\n    http2_recv_timeout 30s;\n  }\n}\n`);
    const r = await runFulcrum(['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /http2_idle_timeout" is obsolete/);
    assert.match(r.stderr + r.stdout, /http2_recv_timeout" is obsolete/);
    await expectConfigError(dir, 'h2-streams-0', 'events {}\nhttp {\n  server {\n    http2_max_concurrent_streams 0;\n  }\n}\n', { line: 4, message: /invalid value "0"/ });
  });

  test('http2_max_concurrent_streams reaches the client in SETTINGS; stub_status counts an HTTP/2 stream as writing', async () => {
    const dir = tempDir();
    const ca = makeCA(dir);
    const cert = signCert(ca, dir, { commonName: 'localhost', altNames: ['localhost', '127.0.0.1'] });
    const [h2Port] = await freePorts(1);
    const h2 = await startFulcrum({
      dir,
      config: `events {}\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:${h2Port} ssl;\n    ssl_certificate ${cert.certPath};\n    ssl_certificate_key ${cert.keyPath};\n    http2_max_concurrent_streams 7;\n    location = /st { stub_status; }\n  }\n}\n`,
    });
    const session = http2.connect(`https://127.0.0.1:${h2Port}`, { ca: ca.cert, servername: 'localhost' });
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      assert.equal(settings.maxConcurrentStreams, 7);
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/st' });
        let text = '';
        stream.setEncoding('latin1');
        stream.on('data', (d: string) => (text += d));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      assert.match(body, /^Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n$/);
    } finally {
      session.close();
      await h2.stop();
    }
  });
});
