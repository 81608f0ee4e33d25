/**
 * Virtual servers chosen by Host on a keep-alive connection: every request
 * is routed by its own Host, whatever the previous request on the connection
 * asked for, and a reload changes the routing of the next request on a
 * connection opened before it (which then closes, as with nginx). (The listener remembers the previous
 * request's server per connection, since keep-alive clients repeat their
 * Host; this checks that the memory never answers for a different Host or
 * an older configuration.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { parseHttpResponses } from '../support/http-client.js';
import { freePort } from '../support/ports.js';

let fulcrum: FulcrumProcess | undefined;

after(async () => {
  await fulcrum?.stop();
});

function config(port: number, names: { a: string; b: string }): string {
  return `http {
  access_log off;
  server { listen 127.0.0.1:${port} default_server; return 200 "default\\n"; }
  server { listen 127.0.0.1:${port}; server_name ${names.a}; return 200 "A\\n"; }
  server { listen 127.0.0.1:${port}; server_name ${names.b}; return 200 "B\\n"; }
}
`;
}

/** One keep-alive connection; `get` sends a request and resolves with the body of its response. */
function connection(port: number): { get(host: string | undefined): Promise<string>; close(): void } {
  const socket = net.connect(port, '127.0.0.1');
  let data = Buffer.alloc(0);
  let waiting: ((body: string) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk]);
    const responses = parseHttpResponses(data);
    if (responses.length > 0 && responses[0]!.complete && waiting !== undefined) {
      const done = waiting;
      waiting = undefined;
      data = Buffer.alloc(0);
      done(responses[0]!.body.toString('latin1'));
    }
  });
  return {
    get(host) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no response for Host ${host}`)), 5000);
        waiting = (body) => {
          clearTimeout(timer);
          resolve(body);
        };
        socket.write(`GET / HTTP/1.1\r\n${host === undefined ? 'Host:' : `Host: ${host}`}\r\n\r\n`);
      });
    },
    close: () => socket.destroy(),
  };
}

test('each request on one keep-alive connection is routed by its own Host, before and after a reload', async () => {
  const port = await freePort();
  fulcrum = await startFulcrum({ config: config(port, { a: 'a.test', b: 'b.test' }), waitFor: 'ready' });
  const conn = connection(port);
  try {
    const hosts = ['a.test', 'a.test', 'b.test', 'A.TEST:80', 'other.test', undefined, 'b.test.', 'a.test'];
    const bodies: string[] = [];
    for (const host of hosts) bodies.push(await conn.get(host));
    assert.deepEqual(bodies, ['A\n', 'A\n', 'B\n', 'A\n', 'default\n', 'default\n', 'B\n', 'A\n']);

    await fulcrum.reload(config(port, { a: 'b.test', b: 'a.test' }));
    // (That response also closes the connection, as nginx's old workers close their keep-alive connections.)
    assert.equal(await conn.get('a.test'), 'B\n', 'the same Host on the same connection, routed by the new configuration');
  } finally {
    conn.close();
  }
});
