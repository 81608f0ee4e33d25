import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { chooseReadBuffers, isSharedReadBuffer, readIntoSharedBuffer, sharedReadsAvailable } from '../../src/net/shared-read-buffer.js';
import { selfSignedCertificate } from '../../src/tls/self-signed.js';

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

test('a TLS socket switched after its handshake gets the request its client sent with the handshake, then every byte, and still sees the end', async () => {
  const { cert, key } = selfSignedCertificate('localhost');
  const reads: string[] = [];
  let sharedEachTime = true;
  let accepted!: TLSSocket;
  let enabled = false;
  const server = tls.createServer({ cert, key, allowHalfOpen: true }, (socket) => {
    accepted = socket;
    const onRead = (bytes: number, buffer: Buffer): boolean => {
      sharedEachTime &&= isSharedReadBuffer(buffer);
      reads.push(buffer.toString('latin1', 0, bytes));
      return true;
    };
    enabled = readIntoSharedBuffer(socket, onRead);
    // Anything the TLS layer decrypted before the switch would wait in the stream buffer: drained as Http1Connection does.
    let early: Buffer | null;
    while ((early = socket.read() as Buffer | null) !== null) reads.push(early.toString('latin1'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = tls.connect({ port, host: '127.0.0.1', ca: cert, servername: 'localhost' });
  client.write('with-handshake'); // queued by Node, sent right after the client's Finished
  await once(client, 'secureConnect');
  while (reads.join('') !== 'with-handshake') await new Promise((r) => setTimeout(r, 5));
  assert.equal(enabled, true);
  accepted.pause();
  client.write('|second');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(reads.join(''), 'with-handshake', 'a paused TLS socket reads nothing');
  const ended = once(accepted, 'end');
  accepted.resume();
  client.end('|' + 'x'.repeat(100_000)); // several TLS records, several reads
  await ended;
  assert.equal(reads.join(''), 'with-handshake|second|' + 'x'.repeat(100_000));
  assert.equal(sharedEachTime, true, 'every read after the switch landed in the one shared buffer');
  accepted.destroy();
  server.close();
});

test("reads skip Node's onStreamRead, land in the buffers a chooser gives from the next read on, and stop while the callback says so", async () => {
  const reads: { text: string; shared: boolean }[] = [];
  let accepted!: Socket;
  let allow = true;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted = socket;
    readIntoSharedBuffer(socket, (bytes, buffer) => {
      reads.push({ text: buffer.toString('latin1', 0, bytes), shared: isSharedReadBuffer(buffer) });
      return allow;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const received = async (text: string): Promise<void> => {
    for (let i = 0; i < 400 && reads.map((r) => r.text).join('') !== text; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(reads.map((r) => r.text).join(''), text);
  };
  client.write('a');
  await received('a');
  const onread = (accepted as unknown as { _handle: { onread: { name: string } } })._handle.onread;
  assert.equal(onread.name, 'onread', "the handle calls fulcrum's onread, not Node's onStreamRead");

  const own = Buffer.alloc(4096);
  assert.equal(chooseReadBuffers(accepted, () => own), true);
  client.write('b'); // lands where the handle was told to read before the switch
  await received('ab');
  client.write('c');
  await received('abc');
  assert.deepEqual(reads.map((r) => r.shared), [true, true, false], 'from the read after the switch on, the chosen buffer');

  allow = false;
  client.write('d');
  await received('abcd');
  client.write('e');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(reads.map((r) => r.text).join(''), 'abcd', 'after the callback said stop, nothing is read');
  allow = true;
  accepted.pause();
  accepted.resume();
  await received('abcde');
  const ended = once(accepted, 'end');
  client.end();
  await ended;
  accepted.destroy();
  server.close();
});
