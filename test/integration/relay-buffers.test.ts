/**
 * Streamed bodies are relayed without copies, both ways: a read buffer of
 * the connection's own while a body streams in (from the upstream, or from
 * the client), lent to the write on the other side; a new one when the write
 * has to wait (src/net/read-buffers.ts). What a user would notice if that went wrong: bytes
 * of one response inside another, or a body overwritten before it was sent.
 * So: many large downloads at once over plain HTTP, half of them read slowly
 * enough that fulcrum's writes to them queue, with small requests in between,
 * and every byte of every body checked.
 *
 * The small requests also guard a bug this test found: an upstream connection
 * whose reading was paused for a slow client, and whose response then
 * completed, went back to the pool still paused, and the next request sent on
 * it never got its response read.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { deterministicBytes } from '../../src/demo/backend.js';
import { startBalancing, type BalancingEnv } from '../support/balancing.js';
import { openRequest, request } from '../support/http-client.js';
import { generatedBody } from '../support/streams.js';
import { sleep } from '../support/wait.js';

let env: BalancingEnv;

before(async () => {
  env = await startBalancing(2, ({ server }) => `${server(0)}\n${server(1)}`, { location: 'client_max_body_size 0;' });
});

after(async () => {
  await env?.stop();
});

const MB = 1024 * 1024;

/** Reads a response, pausing `pauseMs` after every `everyBytes` when slow; checks each byte against the backend's deterministic data. */
async function readChecked(res: http.IncomingMessage, slow: boolean): Promise<{ bytes: number; firstMismatch: number }> {
  let received = 0;
  let firstMismatch = -1;
  let sincePause = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (firstMismatch < 0 && !chunk.equals(deterministicBytes(received, chunk.length))) {
      const expected = deterministicBytes(received, chunk.length);
      let i = 0;
      while (chunk[i] === expected[i]) i++;
      firstMismatch = received + i;
    }
    received += chunk.length;
    sincePause += chunk.length;
    if (slow && sincePause >= 512 * 1024) {
      sincePause = 0;
      await sleep(40);
    }
  }
  return { bytes: received, firstMismatch };
}

test('12 large downloads at once, half read slowly, with small requests in between: every body arrives intact', async () => {
  const size = 6 * MB;
  const downloads = Array.from({ length: 12 }, async (_, i) => {
    const chunked = i % 3 === 0;
    const path = chunked ? `/chunked?n=${size / 32768}&size=32768&interval=0` : `/bytes?n=${size}`;
    const res = await openRequest({ port: env.port, path, timeoutMs: 30_000 });
    assert.equal(res.statusCode, 200);
    return readChecked(res, i % 2 === 1);
  });
  const small: Promise<number | string>[] = [];
  for (let i = 0; i < 40; i++) {
    small.push(request({ port: env.port, path: '/hello', timeoutMs: 5000 }).then((r) => r.status, (err: Error) => err.message));
    await sleep(10);
  }
  const results = await Promise.all(downloads);
  for (const [i, r] of results.entries()) {
    assert.equal(r.firstMismatch, -1, `download ${i}: first wrong byte at offset ${r.firstMismatch}`);
    assert.equal(r.bytes, size, `download ${i}: every byte arrived`);
  }
  assert.deepEqual(new Set(await Promise.all(small)), new Set([200]), 'every small request in between was answered');
});


test('10 uploads at once (Content-Length and chunked, in large and small pieces) reach the backends intact', async () => {
  const size = 6 * MB;
  const uploads = Array.from({ length: 10 }, async (_, i) => {
    const body = generatedBody(size, i % 2 === 0 ? 64 * 1024 : 1500);
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    if (i % 3 !== 0) headers['content-length'] = size; // else chunked
    const res = await request({ port: env.port, method: 'POST', path: '/echo', body: body.stream, headers, timeoutMs: 30_000 });
    assert.equal(res.status, 200, res.body.toString().slice(0, 200));
    const echo = JSON.parse(res.body.toString()) as { bytes: number; sha256: string };
    return { bytes: echo.bytes, same: echo.sha256 === body.digest() };
  });
  for (const [i, r] of (await Promise.all(uploads)).entries()) {
    assert.equal(r.bytes, size, `upload ${i}: every byte arrived`);
    assert.equal(r.same, true, `upload ${i}: the backend's sha256 is the client's`);
  }
});
