import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { isSharedReadBuffer, readIntoSharedBuffer, sharedReadsAvailable } from '../../src/net/shared-read-buffer.js';

test('on this Node, accepted sockets can read into the shared buffer (the fast path is in use)', () => {
  assert.equal(sharedReadsAvailable, true, `Node ${process.version} changed how onread is stored: client reads fell back to 'data' events`);
});

test('an accepted socket reading into the shared buffer gets every byte, can pause and resume, and still sees the end', async () => {
  const reads: string[] = [];
  let sharedEachTime = true;
  let accepted!: Socket;
  let enabled = false;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted = socket;
    enabled = readIntoSharedBuffer(socket, (bytes, buffer) => {
      sharedEachTime &&= isSharedReadBuffer(buffer);
      reads.push(buffer.toString('latin1', 0, bytes));
      return true;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  client.write('first');
  while (reads.join('') !== 'first') await new Promise((r) => setTimeout(r, 5));
  assert.equal(enabled, true);
  accepted.pause();
  client.write('second');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(reads.join(''), 'first', 'a paused socket reads nothing');
  const ended = once(accepted, 'end');
  accepted.resume();
  client.end('|last');
  await ended;
  assert.equal(reads.join(''), 'firstsecond|last');
  assert.equal(sharedEachTime, true, 'every read landed in the one shared buffer');
  accepted.destroy();
  server.close();
});
