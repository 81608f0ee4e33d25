import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { deterministicBytes, startBackend, type RunningBackend } from '../../src/demo/backend.js';
import { headerValues } from '../support/backends.js';
import { openRequest, request, type HttpResponse } from '../support/http-client.js';

const NAME = 'backend_t';

function json<T = Record<string, unknown>>(res: HttpResponse): T {
  return JSON.parse(res.body.toString()) as T;
}

describe('demo backend (in process)', () => {
  let backend: RunningBackend;
  const get = (path: string, extra: Partial<Parameters<typeof request>[0]> = {}) =>
    request({ port: backend.port, path, ...extra });

  before(async () => {
    backend = await startBackend({ port: 0, name: NAME, crash: 'close-server' });
  });
  after(() => backend.close());

  test('hello answers on /, /hello and under /api, naming the replica in X-Backend', async () => {
    for (const path of ['/', '/hello', '/api', '/api/hello']) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.body.toString(), `Hello from ${NAME}\n`, path);
      assert.equal(res.headers['x-backend'], NAME, path);
    }
  });

  test('unknown paths get a JSON 404 that still names the replica', async () => {
    const res = await get('/api/nope');
    assert.equal(res.status, 404);
    assert.equal(res.headers['x-backend'], NAME);
    assert.deepEqual(json(res), { error: 'not found', name: NAME, path: '/api/nope' });
  });

  test('whoami reports the request as received, headers as raw pairs', async () => {
    const res = await get('/api/whoami?x=1', { headers: { 'X-Forwarded-For': '203.0.113.7', 'x-real-ip': '203.0.113.7' } });
    const who = json<{ name: string; port: number; pid: number; method: string; url: string; httpVersion: string; remoteAddress: string; headers: Array<[string, string]> }>(res);
    assert.equal(who.name, NAME);
    assert.equal(who.port, backend.port);
    assert.equal(who.pid, process.pid);
    assert.equal(who.method, 'GET');
    assert.equal(who.url, '/api/whoami?x=1');
    assert.equal(who.httpVersion, '1.1');
    assert.equal(who.remoteAddress, '127.0.0.1');
    assert.deepEqual(headerValues(who.headers, 'x-forwarded-for'), ['203.0.113.7']);
    assert.ok(who.headers.some(([name]) => name === 'X-Forwarded-For'), 'header case is kept');
    assert.deepEqual(headerValues(who.headers, 'host'), [`127.0.0.1:${backend.port}`]);
  });

  test('echo hashes a 5 MB body and /count shows it arrived once', async () => {
    await get('/count/reset');
    const body = randomBytes(5 * 1024 * 1024);
    const res = await get('/api/echo?id=1', { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
    const echo = json<{ name: string; method: string; url: string; bytes: number; sha256: string }>(res);
    assert.equal(echo.name, NAME);
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/api/echo?id=1');
    assert.equal(echo.bytes, body.length);
    assert.equal(echo.sha256, createHash('sha256').update(body).digest('hex'));
    const counts = json<{ total: number; paths: Record<string, number> }>(await get('/count'));
    assert.deepEqual(counts.paths, { '/api/echo': 1 });
    assert.equal(counts.total, 1);
  });

  test('echo streams a 256 MB upload without buffering it', async () => {
    const piece = Buffer.alloc(64 * 1024, 7);
    const pieces = 4096; // 256 MiB
    const expected = createHash('sha256');
    for (let i = 0; i < pieces; i++) expected.update(piece);
    const rssBefore = process.memoryUsage().rss;
    const res = await get('/echo', {
      method: 'PUT',
      headers: { 'Content-Length': piece.length * pieces },
      body: Readable.from((function* () { for (let i = 0; i < pieces; i++) yield piece; })()),
      timeoutMs: 60_000,
    });
    const echo = json<{ bytes: number; sha256: string }>(res);
    assert.equal(echo.bytes, piece.length * pieces);
    assert.equal(echo.sha256, expected.digest('hex'));
    const grewMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grewMb < 128, `memory grew by ${grewMb.toFixed(0)} MB for a 256 MB upload`);
  });

  test('bytes sends n deterministic bytes with Content-Length', async () => {
    const n = 200_000;
    const res = await get('/bytes?n=200000');
    assert.equal(res.headers['content-length'], String(n));
    assert.equal(res.body.length, n);
    assert.ok(res.body.equals(deterministicBytes(0, n)));
    assert.equal(res.body[100_000], 100_000 % 251);
  });

  test('chunked answers with Transfer-Encoding: chunked, n chunks of size bytes', async () => {
    const res = await get('/chunked?n=4&size=1000&interval=10');
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(res.headers['content-length'], undefined);
    assert.ok(res.body.equals(deterministicBytes(0, 4000)));
  });

  test('stream sends server-sent events one interval apart, not all at the end', async () => {
    const start = Date.now();
    const res = await openRequest({ port: backend.port, path: '/api/stream?n=4&interval=150' });
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['content-length'], undefined);
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      text += chunk.toString();
      const events = text.split('\n\n').length - 1;
      while (arrivals.length < events) arrivals.push(Date.now() - start);
    }
    assert.equal(text, [0, 1, 2, 3].map((i) => `data: ${i} from ${NAME}\n\n`).join(''));
    assert.ok(arrivals[0]! < 120, `first event after ${arrivals[0]} ms`);
    for (let i = 1; i < arrivals.length; i++) {
      const gap = arrivals[i]! - arrivals[i - 1]!;
      assert.ok(gap >= 100 && gap < 400, `gap ${i}: ${gap} ms (arrivals ${arrivals.join(', ')})`);
    }
  });

  test('slow answers after the given delay', async () => {
    const start = Date.now();
    const res = await get('/slow?ms=200');
    assert.ok(Date.now() - start >= 190);
    assert.equal(res.body.toString(), `slow 200 ms from ${NAME}\n`);
  });

  test('status/<code> answers with that status; 204 has no body', async () => {
    const unavailable = await get('/api/status/503');
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.body.toString(), `status 503 from ${NAME}\n`);
    const noContent = await get('/status/204');
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body.length, 0);
    assert.equal((await get('/status/700')).status, 400);
  });

  test('a query parameter out of range is a 400', async () => {
    const res = await get('/bytes?n=-1');
    assert.equal(res.status, 400);
    assert.match(json<{ error: string }>(res).error, /n must be an integer/);
  });

  test('healthz is ok until /healthz/fail toggles it', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.deepEqual(json(await get('/healthz/fail')), { name: NAME, healthy: false });
    const failing = await get('/api/healthz');
    assert.equal(failing.status, 503);
    await get('/healthz/fail');
    assert.equal((await get('/healthz')).body.toString(), 'ok\n');
  });

  test('keeps Node\'s 5 s keep-alive timeout unless told otherwise', async () => {
    assert.equal(backend.server.keepAliveTimeout, 5000);
    const other = await startBackend({ port: 0, name: 'other', keepAliveTimeoutMs: 1234 });
    assert.equal(other.server.keepAliveTimeout, 1234);
    await other.close();
  });

  test('hang never answers, and close() still returns promptly', async () => {
    const hanging = await startBackend({ port: 0, name: 'hanging' });
    const pending = request({ port: hanging.port, path: '/hang', timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const start = Date.now();
    await hanging.close();
    assert.ok(Date.now() - start < 1000);
    await assert.rejects(pending, /socket hang up|ECONNRESET/);
  });

  test('crash (close-server mode) drops the connection without an answer and stops listening', async () => {
    const doomed = await startBackend({ port: 0, name: 'doomed', crash: 'close-server' });
    await assert.rejects(request({ port: doomed.port, path: '/crash' }), /socket hang up|ECONNRESET/);
    await assert.rejects(request({ port: doomed.port, path: '/' }), /ECONNREFUSED/);
    await doomed.close();
  });
});

// ---------------------------------------------------------------------------
// WebSocket, spoken by hand over a raw socket so the test does not share code with the server.

/** Reads exact byte counts from a socket. */
class SocketReader {
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  ended = false;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => { this.buffered = Buffer.concat([this.buffered, chunk]); this.wake?.(); });
    socket.on('close', () => { this.ended = true; this.wake?.(); });
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.buffered.length} of ${n} bytes`);
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  async readUntil(marker: string): Promise<string> {
    while (this.buffered.indexOf(marker) < 0) {
      if (this.ended) throw new Error('connection closed');
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
    const end = this.buffered.indexOf(marker) + marker.length;
    return (await this.read(end)).toString('latin1');
  }
}

function maskedFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  let lengthBytes: Buffer;
  if (payload.length < 126) lengthBytes = Buffer.from([0x80 | payload.length]);
  else if (payload.length < 65536) lengthBytes = Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  else {
    lengthBytes = Buffer.alloc(9);
    lengthBytes[0] = 0x80 | 127;
    lengthBytes.writeUInt32BE(payload.length, 5);
  }
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode]), lengthBytes, mask, masked]);
}

/** Reads one unmasked server frame, checking the length encoding RFC 6455 prescribes for its size. */
async function readServerFrame(reader: SocketReader): Promise<{ fin: boolean; opcode: number; payload: Buffer }> {
  const [first, second] = await reader.read(2);
  assert.equal(second! & 0x80, 0, 'server frames are not masked');
  let length = second! & 0x7f;
  if (length === 126) {
    length = (await reader.read(2)).readUInt16BE(0);
    assert.ok(length >= 126 && length < 65536);
  } else if (length === 127) {
    length = Number((await reader.read(8)).readBigUInt64BE(0));
    assert.ok(length >= 65536);
  }
  return { fin: (first! & 0x80) !== 0, opcode: first! & 0x0f, payload: await reader.read(length) };
}

describe('demo backend WebSocket echo', () => {
  let backend: RunningBackend;
  before(async () => { backend = await startBackend({ port: 0, name: NAME }); });
  after(() => backend.close());

  async function handshake(path: string): Promise<{ socket: net.Socket; reader: SocketReader; head: string }> {
    const socket = net.connect(backend.port, '127.0.0.1');
    const reader = new SocketReader(socket);
    socket.write([
      `GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${backend.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      // The key and accept value from RFC 6455 section 1.3.
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', '',
    ].join('\r\n'));
    return { socket, reader, head: await reader.readUntil('\r\n\r\n') };
  }

  test('handshake, text and binary echo (7-, 16- and 64-bit lengths), ping, close', async () => {
    const { socket, reader, head } = await handshake('/api/ws');
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    assert.match(head, new RegExp(`\\r\\nX-Backend: ${NAME}\\r\\n`));

    socket.write(maskedFrame(0x1, Buffer.from('hello')));
    assert.deepEqual(await readServerFrame(reader), { fin: true, opcode: 0x1, payload: Buffer.from('hello') });

    for (const size of [300, 70_000]) {
      const payload = randomBytes(size);
      socket.write(maskedFrame(0x2, payload));
      const echoed = await readServerFrame(reader);
      assert.equal(echoed.opcode, 0x2);
      assert.ok(echoed.payload.equals(payload), `binary ${size}`);
    }

    socket.write(maskedFrame(0x9, Buffer.from('are you there')));
    assert.deepEqual(await readServerFrame(reader), { fin: true, opcode: 0xa, payload: Buffer.from('are you there') });

    socket.write(maskedFrame(0x8, Buffer.from([0x03, 0xe8]))); // 1000, normal closure
    assert.deepEqual(await readServerFrame(reader), { fin: true, opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) });
    if (!reader.ended) await once(socket, 'close');
    assert.ok(socket.destroyed, 'the server closed the connection');
  });

  test('an unmasked client frame is a protocol error (close 1002)', async () => {
    const { socket, reader } = await handshake('/ws');
    socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    const frame = await readServerFrame(reader);
    assert.equal(frame.opcode, 0x8);
    assert.equal(frame.payload.readUInt16BE(0), 1002);
    socket.destroy();
  });

  test('upgrades elsewhere than /ws are refused with 404', async () => {
    const { socket, head } = await handshake('/nope');
    assert.match(head, /^HTTP\/1\.1 404 /);
    socket.destroy();
  });
});

// ---------------------------------------------------------------------------

describe('demo backend as a process', () => {
  test('prints one listening line, serves, and exits 0 on SIGTERM', async () => {
    const script = fileURLToPath(new URL('../../src/demo/backend.js', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0', '--name', 'backend_p'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const first = await lines.next();
      const listening = JSON.parse(first.value as string) as { event: string; name: string; port: number; pid: number };
      assert.deepEqual({ ...listening, port: 0 }, { event: 'listening', name: 'backend_p', port: 0, pid: child.pid });
      const res = await request({ port: listening.port, path: '/hello' });
      assert.equal(res.body.toString(), 'Hello from backend_p\n');
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exit, 0);
      assert.equal((await lines.next()).done, true, 'nothing else on stdout');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a taken port exits with status 98 (EADDRINUSE)', async () => {
    const holder = await startBackend({ port: 0, name: 'holder' });
    try {
      const script = fileURLToPath(new URL('../../src/demo/backend.js', import.meta.url));
      const child = spawn(process.execPath, [script, '--port', String(holder.port), '--name', 'late'], { stdio: 'ignore' });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 98);
    } finally {
      await holder.close();
    }
  });
});
