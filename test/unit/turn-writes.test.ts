import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { actAtEndOfTurn, flushTurnWrites, turnWritesPending, writeAtEndOfTurn } from '../../src/net/turn-writes.js';

/** A connected pair of real sockets on 127.0.0.1 and everything the far side receives. */
async function socketPair(): Promise<{ near: Socket; received: () => Promise<string>; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const near = connect(port, '127.0.0.1');
  await once(near, 'connect');
  const [far] = (await accepted) as [Socket];
  let text = '';
  far.setEncoding('latin1');
  far.on('data', (d: string) => (text += d));
  const ended = once(far, 'end');
  return {
    near,
    received: async () => {
      await ended;
      return text;
    },
    close: () => {
      far.destroy();
      server.close();
    },
  };
}

test('writes held to the end of the turn go out in order, and a flush before a direct write keeps that order', async () => {
  const { near, received, close } = await socketPair();
  writeAtEndOfTurn(near, 'HTTP/1.1 200 OK\r\n');
  writeAtEndOfTurn(near, Buffer.from('Content-Length: 2\r\n\r\n', 'latin1'));
  assert.equal(turnWritesPending(), true, 'nothing is written before the turn ends');
  flushTurnWrites();
  near.write('ok');
  writeAtEndOfTurn(near, '|after');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(turnWritesPending(), false, 'the end of the turn wrote what was held');
  near.end();
  assert.equal(await received(), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok|after');
  close();
});

test('what a socket destroyed before the end of the turn had queued is dropped, other sockets still get theirs', async () => {
  const a = await socketPair();
  const b = await socketPair();
  writeAtEndOfTurn(a.near, 'lost');
  writeAtEndOfTurn(b.near, 'kept');
  a.near.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  b.near.end();
  assert.equal(await a.received(), '');
  assert.equal(await b.received(), 'kept');
  a.close();
  b.close();
});

test('an action queued for a socket runs at the end of the turn, after the writes queued before it', async () => {
  const { near, received, close } = await socketPair();
  const seen: number[] = [];
  writeAtEndOfTurn(near, 'response');
  actAtEndOfTurn(near, (socket) => {
    seen.push(socket.writableLength);
    socket.end();
  });
  assert.deepEqual(seen, [], 'nothing runs before the turn ends');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, [0], 'the response was in the kernel when the action ran');
  assert.equal(await received(), 'response');
  close();
});
