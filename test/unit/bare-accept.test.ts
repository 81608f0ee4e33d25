/**
 * Plain-HTTP client connections run on bare TCP handles (net/tcp-stream.ts,
 * listener.ts), not net.Sockets: this says whether that fast path is in use
 * on this Node, through a real listener of a running configuration. What
 * clients notice is covered by the integration suite, which runs on it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { Http1Connection } from '../../src/listeners/http1-connection.js';
import { TcpStream } from '../../src/net/tcp-stream.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';

test('a plain-HTTP listener hands its connections to fulcrum as bare TCP handles (the fast path is in use)', async () => {
  const port = await freePort();
  const dir = tempDir();
  const configPath = join(dir, 'fulcrum.conf');
  writeFileSync(configPath, `events {}\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:${port};\n    location / { return 200 "ok\\n"; }\n  }\n}\n`);
  const runtime = new Runtime({ configPath, quiet: true });
  await runtime.start();
  const client = net.connect(port, '127.0.0.1');
  try {
    client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    let got = '';
    client.setEncoding('latin1');
    await new Promise<void>((resolve) => client.on('data', (d: string) => ((got += d), got.endsWith('ok\n') && resolve())));
    assert.match(got, /^HTTP\/1\.1 200 /);
    const connections = [...(runtime.tracker as unknown as { connections: Set<unknown> }).connections];
    assert.equal(connections.length, 1);
    const connection = connections[0] as Http1Connection;
    assert.ok(connection instanceof Http1Connection);
    assert.ok(connection.socket instanceof TcpStream, `Node ${process.version}: accepted connections fell back to net.Socket`);
    assert.equal(connection.remotePort, client.localPort);
  } finally {
    client.destroy();
    await runtime.shutdown();
  }
});
