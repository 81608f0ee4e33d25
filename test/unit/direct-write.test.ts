import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { directWritesAvailable, unsentDirectBytes, writeDirect } from '../../src/net/direct-write.js';

async function socketPair(): Promise<{ writer: Socket; reader: Socket; close(): void }> {
  let accepted!: Socket;
  const server = createServer((s) => (accepted = s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const writer = connect(port, '127.0.0.1');
  await once(writer, 'connect');
  while (accepted === undefined) await new Promise((r) => setTimeout(r, 2));
  return {
    writer,
    reader: accepted,
    close: () => {
      writer.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

test('on this Node, small writes go straight to the socket handle (the fast path is in use)', () => {
  assert.equal(directWritesAvailable, true, `Node ${process.version} no longer offers WriteWrap through process.binding: writes fell back to socket.write`);
});

test('direct writes the kernel cannot take at once keep their order with stream writes and end(), and are reported unsent until they go', async () => {
  const { writer, reader, close } = await socketPair();
  try {
    reader.pause(); // nothing is read until every write was issued: the kernel buffers fill
    const big = pattern(16 << 20, 1); // more than the kernel buffers can hold (tcp_wmem max 4 MiB, a paused reader's window stays small)
    writeDirect(writer, 'head|');
    writeDirect(writer, big); // more than the socket buffers hold: libuv keeps the rest
    assert.ok(unsentDirectBytes(writer) > 0, 'the bytes libuv holds are reported');
    assert.equal(writer.writableLength, 0, "Node's stream does not see them");
    writeDirect(writer, '|after-big|'); // queued behind them, by Node's stream this time
    writer.write(pattern(100_000, 2));
    writeDirect(writer, '|tail');
    writer.end();
    const received: Buffer[] = [];
    reader.on('data', (d: Buffer) => received.push(d));
    const ended = once(reader, 'end');
    reader.resume();
    await ended;
    const all = Buffer.concat(received);
    const expected = Buffer.concat([Buffer.from('head|'), big, Buffer.from('|after-big|'), pattern(100_000, 2), Buffer.from('|tail')]);
    assert.equal(all.length, expected.length);
    assert.ok(all.equals(expected), 'every byte arrives, in the order written');
    assert.equal(unsentDirectBytes(writer), 0);
  } finally {
    close();
  }
});

test('a direct write whose peer is gone fails the socket with an error instead of losing it silently', async () => {
  const { writer, reader, close } = await socketPair();
  try {
    let error: Error | undefined;
    writer.on('error', (e) => (error = e));
    reader.on('error', () => {});
    reader.pause();
    writeDirect(writer, pattern(16 << 20, 3)); // held by libuv
    assert.ok(unsentDirectBytes(writer) > 0);
    const failed = new Promise((resolve) => writer.on('close', resolve)); // not once(): it rejects on the 'error' expected here
    reader.resetAndDestroy();
    await failed;
    assert.ok(writer.destroyed);
    assert.match(String(error?.message), /write failed|ECONNRESET|EPIPE/);
  } finally {
    close();
  }
});
