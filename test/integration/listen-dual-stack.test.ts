/**
 * `listen 80; listen [::]:80;`, the pair in Debian's default site and most
 * nginx configs: nginx binds IPv6 sockets with IPV6_V6ONLY on, so the two are
 * separate sockets and both serve (fulcrum used to fail with "address already
 * in use"); `ipv6only=off` makes one [::] socket that takes IPv4 too. Traffic
 * goes to 127.0.0.1 and ::1 only.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startFulcrum } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';

describe('listen on IPv4 and IPv6 wildcards', () => {
  test('listen P; listen [::]:P; both serve, each on its own socket', async () => {
    const [port] = await freePorts(1);
    const fulcrum = await startFulcrum({
      config: `events {}\nhttp {\n  access_log off;\n  server {\n    listen ${port} default_server;\n    listen [::]:${port} default_server;\n    location / { return 200 "from $server_addr\\n"; }\n  }\n}\n`,
    });
    try {
      const v4 = await request({ port: port!, path: '/' });
      assert.equal(v4.status, 200);
      assert.equal(v4.body.toString(), 'from 127.0.0.1\n');
      const v6 = await request({ host: '::1', port: port!, path: '/' });
      assert.equal(v6.status, 200);
      assert.equal(v6.body.toString(), 'from ::1\n');
    } finally {
      await fulcrum.stop();
    }
  });

  test('listen [::]:P ipv6only=off alone serves IPv4 clients too', async () => {
    const [port] = await freePorts(1);
    const fulcrum = await startFulcrum({
      config: `events {}\nhttp {\n  access_log off;\n  server {\n    listen [::]:${port} ipv6only=off;\n    location / { return 200 "ok\\n"; }\n  }\n}\n`,
    });
    try {
      assert.equal((await request({ port: port!, path: '/' })).status, 200);
      assert.equal((await request({ host: '::1', port: port!, path: '/' })).status, 200);
    } finally {
      await fulcrum.stop();
    }
  });
});
