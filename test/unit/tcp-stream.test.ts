import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { TcpStream, acceptOnBareHandles, tcpStreamsAvailable, type TcpStreamOwner } from '../../src/net/tcp-stream.js';

/** Records what a TcpStream reports; reads are copied (the read buffer is reused). */
class Recorder implements TcpStreamOwner {
  events: string[] = [];
  received: Buffer[] = [];
  error: NodeJS.ErrnoException | undefined;
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;
  private resolveClosed!: () => void;
  private resolveConnected!: () => void;
  private drainWaiters: (() => void)[] = [];
  private endWaiters: (() => void)[] = [];
  readBuffer = Buffer.allocUnsafe(65536);
  readCallback = (n: number, buf: Buffer): boolean => {
    this.received.push(Buffer.from(buf.subarray(0, n)));
    return true;
  };
  choose = (): Uint8Array => this.readBuffer;

  constructor() {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.connected = new Promise((r) => (this.resolveConnected = r));
  }
  onTcpConnect(): void {
    this.events.push('connect');
    this.resolveConnected();
  }
  onTcpEnd(): void {
    this.events.push('end');
    for (const w of this.endWaiters.splice(0)) w();
  }
  onTcpError(err: NodeJS.ErrnoException): void {
    this.events.push('error');
    this.error = err;
  }
  onTcpClose(): void {
    this.events.push('close');
    this.resolveClosed();
  }
  onTcpDrain(): void {
    this.events.push('drain');
    for (const w of this.drainWaiters.splice(0)) w();
  }
  drained(): Promise<void> {
    return new Promise((r) => this.drainWaiters.push(r));
  }
  ended(): Promise<void> {
    return new Promise((r) => this.endWaiters.push(r));
  }
  text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }
  open(port: number, address = '127.0.0.1', family: 4 | 6 = 4): TcpStream {
    return TcpStream.connect(this, address, port, family, this.readCallback, this.readBuffer, this.choose);
  }
}

async function listen(onSocket: (s: Socket) => void, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

/** A server whose accepted socket reads nothing until resumed; `peer()` waits for it. */
async function listenPaused(): Promise<{ server: Server; port: number; peer(): Promise<Socket> }> {
  let accepted: Socket | undefined;
  const { server, port } = await listen((s) => {
    accepted = s;
    s.pause();
  });
  const peer = async (): Promise<Socket> => {
    while (accepted === undefined) await new Promise((r) => setTimeout(r, 2));
    return accepted;
  };
  return { server, port, peer };
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

test('on this Node, upstream connections can run on bare TCP handles (the fast path is in use)', () => {
  assert.equal(tcpStreamsAvailable, true, `Node ${process.version} no longer offers tcp_wrap/stream_wrap through process.binding: upstream connections fell back to net.Socket`);
});

test('connects, writes what was written while connecting first, reads, and reports the peer closing', async () => {
  const { server, port } = await listen((s) => {
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
      if (got.endsWith('\n')) s.end(`echo:${got}`);
    });
  });
  const rec = new Recorder();
  try {
    const stream = rec.open(port);
    assert.equal(stream.connecting, true);
    stream.write('early|'); // held until connected
    await rec.connected;
    stream.write(Buffer.from('late\n'));
    await rec.ended();
    assert.equal(rec.text(), 'echo:early|late\n');
    stream.destroy();
    await rec.closed;
    assert.deepEqual(rec.events, ['connect', 'end', 'close']);
  } finally {
    server.close();
  }
});

test('a refused connection reports ECONNREFUSED with the address, then closes', async () => {
  const { server, port } = await listen(() => {});
  server.close(); // nothing listens on the port any more
  await once(server, 'close');
  const rec = new Recorder();
  rec.open(port);
  await rec.closed;
  assert.deepEqual(rec.events, ['error', 'close']);
  assert.equal(rec.error?.code, 'ECONNREFUSED');
  assert.equal(rec.error?.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
});

test('IPv6 literals connect too', async () => {
  let server: Server;
  let port: number;
  try {
    ({ server, port } = await listen((s) => s.end('v6'), '::1'));
  } catch {
    return; // no IPv6 loopback on this machine
  }
  const rec = new Recorder();
  try {
    const stream = rec.open(port, '::1', 6);
    await rec.ended();
    assert.equal(rec.text(), 'v6');
    stream.destroy();
    await rec.closed;
  } finally {
    server.close();
  }
});

test('cork/uncork, big writes to a peer that does not read: every byte arrives in order, write() says wait and drain comes once all is sent', async () => {
  const { server, port, peer: acceptedPeer } = await listenPaused();
  const rec = new Recorder();
  try {
    const stream = rec.open(port);
    await rec.connected;
    const big = pattern(16 << 20, 5); // far beyond what the kernel buffers for a paused reader
    stream.cork();
    assert.equal(stream.write('head|'), true);
    stream.write(Buffer.from('a'));
    stream.write('b|');
    stream.uncork();
    const ok = stream.write(big);
    assert.equal(ok, false, 'write() asks the caller to wait');
    assert.equal(stream.writableNeedDrain, true);
    assert.ok(stream.writableLength > 0);
    stream.write('|tail');
    const peer = await acceptedPeer();
    const chunks: Buffer[] = [];
    peer.on('data', (d: Buffer) => chunks.push(d));
    const drained = rec.drained();
    peer.resume();
    await drained;
    assert.equal(stream.writableLength, 0);
    assert.equal(stream.writableNeedDrain, false);
    const expected = Buffer.concat([Buffer.from('head|ab|'), big, Buffer.from('|tail')]);
    while (chunks.reduce((n, c) => n + c.length, 0) < expected.length) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Buffer.concat(chunks).equals(expected), 'every byte arrives, in the order written');
    stream.destroy();
    await rec.closed;
    assert.deepEqual(rec.events, ['connect', 'drain', 'close']);
  } finally {
    server.close();
  }
});

test('more than 16 KiB held while connecting or corked: write() says wait, and the drain comes once they are out, even when the kernel takes them at once', async () => {
  let got = 0;
  const { server, port } = await listen((s) => s.on('data', (d: Buffer) => (got += d.length)));
  const rec = new Recorder();
  try {
    const stream = rec.open(port);
    assert.equal(stream.write(pattern(20_000, 1)), false, 'held while connecting, above the high-water mark');
    const drained = rec.drained();
    await drained;
    assert.equal(stream.writableNeedDrain, false);
    stream.cork();
    stream.write(pattern(10_000, 2));
    assert.equal(stream.write(pattern(10_000, 3)), false, 'corked, above the high-water mark');
    stream.uncork();
    assert.equal(stream.writableNeedDrain, true, 'the caller still waits for the drain');
    await rec.drained();
    while (got < 40_000) await new Promise((r) => setTimeout(r, 2));
    assert.equal(got, 40_000);
    stream.destroy();
    await rec.closed;
    assert.deepEqual(rec.events, ['connect', 'drain', 'drain', 'close']);
  } finally {
    server.close();
  }
});

test('pause() stops reading until resume(); destroy() while connecting reports only the close', async () => {
  const { server, port } = await listen((s) => s.write('x'.repeat(1000)));
  const rec = new Recorder();
  try {
    const stream = rec.open(port);
    stream.pause();
    await rec.connected;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rec.received.length, 0, 'nothing is read while paused');
    stream.resume();
    while (rec.text().length < 1000) await new Promise((r) => setTimeout(r, 5));
    stream.destroy();
    await rec.closed;

    const early = new Recorder();
    early.open(port).destroy();
    await early.closed;
    assert.deepEqual(early.events, ['close']);
  } finally {
    server.close();
  }
});

test('a peer that resets the connection while bytes are queued is reported as an error, not lost silently', async () => {
  const { server, port, peer: acceptedPeer } = await listenPaused();
  const rec = new Recorder();
  try {
    const stream = rec.open(port);
    await rec.connected;
    stream.write(pattern(16 << 20, 9));
    const peer = await acceptedPeer();
    peer.on('error', () => {});
    peer.resetAndDestroy();
    await rec.closed;
    assert.deepEqual(rec.events, ['connect', 'error', 'close']);
    assert.match(String(rec.error?.code), /ECONNRESET|EPIPE/);
  } finally {
    server.close();
  }
});

// ---- accepted connections (plain-HTTP clients: listener.ts)

/** A server whose connections arrive as TcpStreams recorded by a Recorder each. */
async function listenBare(): Promise<{ server: Server; port: number; next(): Promise<{ stream: TcpStream; rec: Recorder }> }> {
  const arrived: { stream: TcpStream; rec: Recorder }[] = [];
  const server = createServer(() => assert.fail('a net.Socket was made for a connection that should be a bare handle'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const taken = acceptOnBareHandles(server, (stream) => {
    const rec = new Recorder();
    stream.start(rec, rec.readCallback, rec.readBuffer);
    arrived.push({ stream, rec });
  });
  assert.equal(taken, true, 'acceptOnBareHandles could not take over the listening handle on this Node');
  const next = async (): Promise<{ stream: TcpStream; rec: Recorder }> => {
    while (arrived.length === 0) await new Promise((r) => setTimeout(r, 2));
    return arrived.shift()!;
  };
  return { server, port: (server.address() as { port: number }).port, next };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(check(), 'condition not reached within 1 s');
}

test('accepted connections: the peer address, reads, writes; end() sends a FIN while reading goes on, and the stream closes once the client ends too', async () => {
  const { server, port, next } = await listenBare();
  try {
    const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(client, 'connect');
    let got = '';
    client.setEncoding('latin1');
    client.on('data', (d: string) => (got += d));
    const { stream, rec } = await next();
    assert.equal(stream.remoteAddress, '127.0.0.1');
    assert.equal(stream.remotePort, client.localPort);
    assert.equal(stream.localPort, port);
    client.write('request');
    await until(() => rec.text() === 'request');
    stream.write('response');
    stream.end();
    await once(client, 'end'); // our FIN, after the bytes written before it
    assert.equal(got, 'response');
    assert.deepEqual(rec.events, []); // half-closed: still open for reading
    client.end('after our FIN');
    await rec.closed;
    assert.equal(rec.text(), 'requestafter our FIN');
    assert.deepEqual(rec.events, ['end', 'close']);
  } finally {
    server.close();
  }
});

test('accepted connections: resetAndDestroy() sends a reset, not a FIN', async () => {
  const { server, port, next } = await listenBare();
  try {
    const client = connect(port, '127.0.0.1');
    const clientError = once(client, 'error');
    const { stream, rec } = await next();
    stream.resetAndDestroy();
    const [err] = (await clientError) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNRESET');
    await rec.closed;
    assert.deepEqual(rec.events, ['close']);
  } finally {
    server.close();
  }
});

test('accepted connections: toNetSocket() hands the connection to a net.Socket that goes on reading and writing (tunnels)', async () => {
  const { server, port, next } = await listenBare();
  try {
    const client = connect(port, '127.0.0.1');
    let got = '';
    client.setEncoding('latin1');
    client.on('data', (d: string) => (got += d));
    const { stream, rec } = await next();
    stream.cork();
    stream.write('written before the handover|');
    const socket = stream.toNetSocket(); // what was written goes first
    assert.equal(stream.destroyed, true);
    let read = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (read += d));
    socket.write('and after');
    client.write('from the client');
    await until(() => got === 'written before the handover|and after' && read === 'from the client');
    client.end();
    await once(socket, 'end');
    socket.end();
    await once(socket, 'close');
    assert.deepEqual(rec.events, []); // the stream let go: the socket reports from now on
  } finally {
    server.close();
  }
});
