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

/** Starts a runtime (return 200 "ok") on `port`, sends one request, and returns the connection fulcrum made of it. */
async function oneConnection(port: number): Promise<{ connection: Http1Connection; client: net.Socket; runtime: Runtime }> {
  const dir = tempDir();
  const configPath = join(dir, 'fulcrum.conf');
  writeFileSync(configPath, `events {}\nhttp {\n  access_log off;\n  server {\n    listen 127.0.0.1:${port};\n    location / { return 200 "ok\\n"; }\n  }\n}\n`);
  const runtime = new Runtime({ configPath, quiet: true });
  await runtime.start();
  const client = net.connect(port, '127.0.0.1');
  client.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  let got = '';
  client.setEncoding('latin1');
  await new Promise<void>((resolve) => client.on('data', (d: string) => ((got += d), got.endsWith('ok\n') && resolve())));
  assert.match(got, /^HTTP\/1\.1 200 /);
  const connections = [...(runtime.tracker as unknown as { connections: Set<unknown> }).connections];
  assert.equal(connections.length, 1);
  assert.ok(connections[0] instanceof Http1Connection);
  return { connection: connections[0], client, runtime };
}

test('a plain-HTTP listener hands its connections to fulcrum as bare TCP handles (the fast path is in use)', async () => {
  const { connection, client, runtime } = await oneConnection(await freePort());
  try {
    assert.ok(connection.socket instanceof TcpStream, `Node ${process.version}: accepted connections fell back to net.Socket`);
    assert.equal(connection.remotePort, client.localPort);
  } finally {
    client.destroy();
    await runtime.shutdown();
  }
});
