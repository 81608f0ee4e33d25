/**
 * nginx's stub_status: the exact text (trailing spaces included) and counts
 * that move with requests, idle keep-alive connections and connections still
 * sending their head; the $connections_* variables. The format and the
 * counts of a first request (Active 1, "1 1 1", Writing 1) were read from
 * Debian's nginx 1.22 (`curl -s /st | cat -A`), and so were the moves of
 * the second test (three idle keep-alive connections, one half-sent head and
 * one silent connection: Active +5, Waiting +4, Reading +1, requests +5
 * counting the status request itself). Counts are per worker
 * process, so the config runs one worker as nginx configs do by default.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  [port] = await freePorts(1);
  fulcrum = await startFulcrum({
    config: `
worker_processes 1;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port};
    location = /st { stub_status; }
    location = /old { stub_status on; }
    location = /vars { add_header X-Active $connections_active; add_header X-Counts "$connections_reading/$connections_writing/$connections_waiting"; return 200 "v"; }
    location / { return 200 "ok"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
});

const FORMAT = /^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$/;

interface Counts {
  active: number;
  accepts: number;
  handled: number;
  requests: number;
  reading: number;
  writing: number;
  waiting: number;
}

async function status(path = '/st'): Promise<Counts> {
  const res = await request({ port, path });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/plain');
  const m = FORMAT.exec(res.body.toString('latin1'));
  assert.ok(m !== null, JSON.stringify(res.body.toString('latin1')));
  const [active, accepts, handled, requests, reading, writing, waiting] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  return { active, accepts, handled, requests, reading, writing, waiting };
}

/** A connection that sent `bytes` (and read what came back). */
async function connect(bytes: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  if (bytes !== '') {
    const answered = bytes.endsWith('\r\n\r\n') ? new Promise<void>((resolve) => socket.once('data', () => resolve())) : Promise.resolve();
    socket.write(bytes);
    await answered;
  }
  return socket;
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 150));
}

describe('stub_status', () => {
  test('the first request sees itself: nginx\'s exact text', async () => {
    const c = await status();
    assert.ok(c.active >= 1 && c.writing >= 1, JSON.stringify(c));
    assert.equal(c.accepts, c.handled);
    assert.ok(c.requests >= 1);
  });

  test('idle keep-alive connections are Waiting, a half-sent head is Reading, and they leave when closed', async () => {
    await settle();
    const before = await status();
    const idle = await Promise.all([1, 2, 3].map(() => connect('GET / HTTP/1.1\r\nHost: x\r\n\r\n')));
    const reading = await connect('GET / HTTP/1.1\r\nHo');
    const fresh = await connect('');
    await settle();
    const during = await status();
    assert.equal(during.active, before.active + 5, JSON.stringify({ before, during }));
    assert.equal(during.waiting, before.waiting + 4, 'three idle keep-alive and one without a byte yet');
    assert.equal(during.reading, before.reading + 1);
    assert.equal(during.accepts, before.accepts + 6);
    assert.equal(during.requests, before.requests + 5, 'three answered, one head begun, and this status request');
    for (const s of [...idle, reading, fresh]) s.destroy();
    await settle();
    const after = await status();
    assert.equal(after.active, before.active);
    assert.equal(after.waiting, before.waiting);
    assert.equal(after.reading, before.reading);
  });

  test('the old form "stub_status on" and only GET/HEAD (405 otherwise, as nginx)', async () => {
    await status('/old');
    assert.equal((await request({ port, path: '/st', method: 'POST', body: 'x' })).status, 405);
    assert.equal((await request({ port, path: '/st', method: 'HEAD' })).status, 200);
  });

  test('$connections_active, $connections_reading/writing/waiting', async () => {
    const res = await request({ port, path: '/vars' });
    assert.ok(Number(res.headers['x-active']) >= 1);
    assert.match(String(res.headers['x-counts']), /^\d+\/[1-9]\d*\/\d+$/);
  });

  test('bad stub_status is a config error with its line', async () => {
    const dir = tempDir();
    await expectConfigError(dir, 'stub-status-server', 'events {}\nhttp {\n  server {\n    stub_status;\n  }\n}\n', { line: 4, message: /"stub_status" directive is not allowed here/ });
    await expectConfigError(dir, 'stub-status-args', 'events {}\nhttp {\n  server {\n    location / { stub_status on off; }\n  }\n}\n', { line: 4, message: /invalid number of arguments/ });
  });
});
