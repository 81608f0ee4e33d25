/**
 * The seed's streaming settings on `location /api`: `proxy_buffering off`,
 * `proxy_request_buffering off`, `chunked_transfer_encoding on`.
 *
 * - server-sent events reach the client event by event, as the backend sends them;
 * - a large upload streams through with bounded memory and arrives intact;
 * - chunked request bodies (no Content-Length) and chunked responses arrive intact.
 *
 * The seed sets no client_max_body_size, so nginx's 1m default would refuse a
 * large upload with 413 (seed-round-robin.test.ts shows fulcrum does the same);
 * this file adds `client_max_body_size 0;` to `location /api`, the one change
 * besides names, ports and paths.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { deterministicBytes } from '../../src/demo/backend.js';
import { generatedBody } from '../support/streams.js';
import { openRequest, rawRequest, request } from '../support/http-client.js';
import { backendCount, rssBytes, SEED_SERVER_NAME, startSeed, type SeedEnv } from '../support/seed.js';
import { collect, sleep, waitUntil } from '../support/wait.js';

let env: SeedEnv;

before(async () => {
  env = await startSeed({ apiLocationExtra: 'client_max_body_size 0;' });
});

after(async () => {
  await env?.stop();
});

const MB = 1024 * 1024;

interface Echo { name: string; bytes: number; sha256: string; headers: Array<[string, string]> }


/** Samples a process's RSS every `everyMs` until stopped; returns the samples in bytes. */
function sampleRss(pid: number, everyMs = 20): { stop(): number[] } {
  const samples: number[] = [];
  const take = () => {
    const rss = rssBytes(pid);
    if (rss !== undefined) samples.push(rss);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

describe('seed 443 /api: streaming (proxy_buffering off, proxy_request_buffering off)', () => {
  test('server-sent events from /api/stream reach the client one by one, as they are sent', async () => {
    const n = 5;
    const interval = 400;
    const started = performance.now();
    const res = await openRequest({ port: env.httpsPort, tls: env.tls, path: `/api/stream?n=${n}&interval=${interval}`, headers: { host: SEED_SERVER_NAME } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const arrivals: Array<{ at: number; event: string }> = [];
    let pending = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      pending += chunk.toString();
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        arrivals.push({ at: performance.now() - started, event: pending.slice(0, end) });
        pending = pending.slice(end + 2);
      }
    }
    const ended = performance.now() - started;
    const backend = String(res.headers['x-backend']);
    assert.deepEqual(arrivals.map((a) => a.event), Array.from({ length: n }, (_, i) => `data: ${i} from ${backend}`));
    // The backend sends event i at about i * interval ms; a buffering proxy would deliver them all at the end.
    const timeline = arrivals.map((a) => a.at.toFixed(0)).join(', ');
    assert.ok(arrivals[0]!.at < 1000, `first event after ${arrivals[0]!.at.toFixed(0)} ms`);
    assert.ok(ended - arrivals[0]!.at > (n - 1) * interval * 0.6, `events at ${timeline} ms, stream ended at ${ended.toFixed(0)} ms`);
    for (let i = 1; i < n; i++) {
      const gap = arrivals[i]!.at - arrivals[i - 1]!.at;
      assert.ok(gap > interval * 0.25, `event ${i} came ${gap.toFixed(0)} ms after event ${i - 1}: events at ${timeline} ms`);
    }
  });

  test('a 200 MB upload (Content-Length) passes through with the right sha256, and fulcrum\'s memory does not grow with it', async (t) => {
    // Warm up fulcrum's buffers with a smaller upload first, so the baseline is a steady state.
    const warm = generatedBody(8 * MB);
    const warmRes = await request({ port: env.httpsPort, tls: env.tls, method: 'POST', path: '/api/echo', body: warm.stream, headers: { 'content-length': 8 * MB } });
    assert.equal(warmRes.status, 200);
    assert.equal((JSON.parse(warmRes.body.toString()) as Echo).sha256, warm.digest());

    const total = 200 * MB;
    const body = generatedBody(total);
    const baseline = rssBytes(env.fulcrum.pid);
    assert.ok(baseline !== undefined, '/proc/<pid>/status is readable');
    const sampler = sampleRss(env.fulcrum.pid);
    const started = performance.now();
    const res = await request({
      port: env.httpsPort,
      tls: env.tls,
      method: 'POST',
      path: '/api/echo',
      body: body.stream,
      headers: { 'content-length': total, 'content-type': 'application/octet-stream' },
      timeoutMs: 30_000,
    });
    const elapsed = performance.now() - started;
    const samples = sampler.stop();
    assert.equal(res.status, 200, res.body.toString());
    const echo = JSON.parse(res.body.toString()) as Echo;
    assert.equal(echo.bytes, total);
    assert.equal(echo.sha256, body.digest());
    assert.deepEqual(echo.headers.filter(([k]) => k.toLowerCase() === 'content-length').map(([, v]) => v), [String(total)]);
    const peak = Math.max(...samples);
    const growth = peak - baseline;
    t.diagnostic(`200 MB upload in ${elapsed.toFixed(0)} ms; fulcrum RSS baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB (${samples.length} samples)`);
    assert.ok(samples.length >= 5, `${samples.length} RSS samples in ${elapsed.toFixed(0)} ms`);
    assert.ok(growth < 60 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB during a ${total / MB} MB upload (baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB)`);
  });

  test('a chunked request body (no Content-Length) arrives intact, and the backend starts receiving before it ends', async () => {
    const before = await Promise.all(env.backends.ports.map((p) => backendCount(p, '/api/echo')));
    const hash = createHash('sha256');
    let total = 0;
    const pieces = new Readable({ read() {} });
    const response = request({
      port: env.httpsPort,
      tls: env.tls,
      method: 'POST',
      path: '/api/echo',
      body: pieces,
      headers: { 'transfer-encoding': 'chunked' },
      timeoutMs: 15_000,
    });
    const push = (chunk: Buffer) => {
      hash.update(chunk);
      total += chunk.length;
      pieces.push(chunk);
    };
    // Irregular piece sizes, from 1 byte to 1 MB.
    for (const size of [1, 7, 4096, 65_537, MB, 3, 100_000]) push(randomBytes(size));
    // The body is not finished, yet a backend already has the request: nothing waits for the whole body.
    await waitUntil(async () => {
      const now = await Promise.all(env.backends.ports.map((p) => backendCount(p, '/api/echo')));
      return now.some((n, i) => n > before[i]!);
    }, { timeoutMs: 3000, description: 'a backend to receive the request head before the body ended' });
    for (let i = 0; i < 20; i++) push(randomBytes(1 + ((i * 7919) % 50_000)));
    await sleep(50);
    pieces.push(null);
    const res = await response;
    assert.equal(res.status, 200, res.body.toString());
    const echo = JSON.parse(res.body.toString()) as Echo;
    assert.equal(echo.bytes, total);
    assert.equal(echo.sha256, hash.digest('hex'));
    const framing = echo.headers.filter(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
    assert.deepEqual(framing.map(([k, v]) => [k.toLowerCase(), v.toLowerCase()]), [['transfer-encoding', 'chunked']]);
  });

  test('a chunked response (no Content-Length) arrives intact, chunk by chunk', async () => {
    const n = 8;
    const size = 1000;
    const interval = 100;
    const exchange = await rawRequest(env.httpsPort, `GET /api/chunked?n=${n}&size=${size}&interval=${interval} HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\nConnection: close\r\n\r\n`, { tls: env.tls, timeoutMs: 2000 });
    const r = exchange.responses[0];
    assert.ok(r, exchange.data.toString('latin1').slice(0, 300));
    assert.equal(r.status, 200);
    assert.equal(r.chunked, true, 'framed with Transfer-Encoding: chunked');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.complete, true, 'ends with the last chunk');
    assert.ok(r.body.equals(deterministicBytes(0, n * size)), 'the bytes the backend sent, in order');

    // And streamed: the first piece arrives long before the last.
    const started = performance.now();
    const res = await openRequest({ port: env.httpsPort, tls: env.tls, path: `/api/chunked?n=${n}&size=${size}&interval=${interval}` });
    const times: number[] = [];
    const chunks: Buffer[] = [];
    for await (const chunk of res as AsyncIterable<Buffer>) {
      times.push(performance.now() - started);
      chunks.push(chunk);
    }
    assert.ok(Buffer.concat(chunks).equals(deterministicBytes(0, n * size)));
    assert.ok(times[times.length - 1]! - times[0]! > (n - 1) * interval * 0.6, `first piece at ${times[0]!.toFixed(0)} ms, last at ${times[times.length - 1]!.toFixed(0)} ms`);
  });

  test('a large download (64 MB) passes through intact with bounded memory', async (t) => {
    const total = 64 * MB;
    const baseline = rssBytes(env.fulcrum.pid)!;
    const sampler = sampleRss(env.fulcrum.pid);
    const res = await openRequest({ port: env.httpsPort, tls: env.tls, path: `/api/bytes?n=${total}`, timeoutMs: 30_000 });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(total));
    const hash = createHash('sha256');
    const expected = createHash('sha256');
    let received = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      hash.update(chunk);
      expected.update(deterministicBytes(received, chunk.length));
      received += chunk.length;
    }
    const samples = sampler.stop();
    assert.equal(received, total);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
    const growth = Math.max(...samples) - baseline;
    t.diagnostic(`64 MB download: fulcrum RSS baseline ${(baseline / MB).toFixed(1)} MB, growth ${(growth / MB).toFixed(1)} MB (${samples.length} samples)`);
    assert.ok(growth < 60 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB during a 64 MB download`);
  });

  test('over HTTP/2 too (fulcrum offers h2): SSE event by event, and a 32 MB upload intact', async () => {
    const session = http2.connect(`https://127.0.0.1:${env.httpsPort}`, { ca: env.tls.ca, servername: SEED_SERVER_NAME });
    session.on('error', () => {});
    try {
      const started = performance.now();
      const sse = session.request({ ':path': '/api/stream?n=4&interval=400' });
      sse.end();
      const times: number[] = [];
      let text = '';
      for await (const chunk of sse as AsyncIterable<Buffer>) {
        text += chunk.toString();
        times.push(performance.now() - started);
      }
      assert.match(text, /^data: 0 from (backend_\d)\n\ndata: 1 from \1\n\ndata: 2 from \1\n\ndata: 3 from \1\n\n$/);
      assert.ok(times.length >= 4 && times[times.length - 1]! - times[0]! > 3 * 400 * 0.6, `pieces at ${times.map((x) => x.toFixed(0)).join(', ')} ms`);

      const body = generatedBody(32 * MB);
      const up = session.request({ ':path': '/api/echo', ':method': 'POST' });
      body.stream.pipe(up);
      let status = 0;
      up.on('response', (h) => { status = Number(h[':status']); });
      const answer = (await collect(up as AsyncIterable<Buffer>)).toString();
      assert.equal(status, 200, answer);
      const echo = JSON.parse(answer) as Echo;
      assert.equal(echo.bytes, 32 * MB);
      assert.equal(echo.sha256, body.digest());
    } finally {
      session.close();
    }
  });
});
