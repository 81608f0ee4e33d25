/**
 * Closing client connections after the response (Connection: close,
 * HTTP/1.0), as nginx does with `lingering_close on`: when nothing more is
 * expected from the client and the response is all in the kernel, fulcrum
 * closes at once; otherwise it shuts its write side and lingers. What a
 * client notices either way: the whole response, then a clean end (FIN),
 * never a reset.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { deterministicBytes } from '../../src/demo/backend.js';
import { startBalancing, type BalancingEnv } from '../support/balancing.js';
import { rawRequest } from '../support/http-client.js';
import { sleep } from '../support/wait.js';

let env: BalancingEnv;

before(async () => {
  env = await startBalancing(1, ({ server }) => server(0));
});

after(async () => {
  await env?.stop();
});

test('100 requests with Connection: close and 100 in HTTP/1.0: each gets its whole response, then a clean end', async () => {
  for (let i = 0; i < 200; i++) {
    const request = i % 2 === 0 ? 'GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' : 'GET /hello HTTP/1.0\r\n\r\n';
    const exchange = await rawRequest(env.port, request, { timeoutMs: 2000 });
    assert.equal(exchange.errorCode, undefined, `request ${i}: ${exchange.errorCode}`);
    assert.equal(exchange.closed, true, `request ${i}: fulcrum closed the connection`);
    assert.equal(exchange.responses.length, 1, `request ${i}: ${exchange.data.toString('latin1').slice(0, 200)}`);
    assert.equal(exchange.responses[0]!.status, 200);
    assert.equal(exchange.responses[0]!.complete, true, `request ${i}: the body is whole`);
  }
});

test('a 4 MB response with Connection: close to a client that reads slowly arrives whole before the end', async () => {
  const size = 4 * 1024 * 1024;
  const socket = net.connect(env.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /bytes?n=${size} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  socket.pause();
  await sleep(300); // fulcrum's write queues behind the full socket buffers
  const chunks: Buffer[] = [];
  let error: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
  const ended = new Promise((resolve) => socket.once('end', resolve));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    socket.pause();
    setTimeout(() => socket.resume(), 1);
  });
  socket.resume();
  await Promise.race([ended, closed]);
  const data = Buffer.concat(chunks);
  const bodyStart = data.indexOf('\r\n\r\n') + 4;
  assert.equal(error, undefined);
  assert.equal(data.length - bodyStart, size, 'every byte before the end');
  assert.ok(data.subarray(bodyStart).equals(deterministicBytes(0, size)));
  socket.destroy();
});
