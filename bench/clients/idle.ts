/**
 * Idle keep-alive client, run by the harness as its own process pinned to the
 * load core: opens `connections` keep-alive connections, sends one GET / on
 * each, reads the response, and then leaves the connection open and idle.
 * Raw sockets rather than node:http keep this client's own memory small.
 *
 * Protocol with the harness, one JSON line each on stdout:
 *   {"phase":"ready",...}  once every connection has its response (or failed);
 *   the harness then measures the proxy, and writes a line to stdin;
 *   {"phase":"final",...}  how many connections were still open; then exit.
 *
 * usage: node idle.js --port P --connections N [--parallel 200]
 */
import { connect, type Socket } from 'node:net';

export interface IdleReady {
  phase: 'ready';
  opened: number;
  failed: number;
  errors: Record<string, number>;
  ms: number;
}

export interface IdleFinal {
  phase: 'final';
  stillOpen: number;
  closedByPeer: number;
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

const port = Number(arg('--port'));
const total = Number(arg('--connections'));
/** Connections being set up at once; more would overflow the listen backlog. */
const parallel = Number(arg('--parallel', '200'));
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
const SETUP_TIMEOUT_MS = 30_000;

const idle = new Set<Socket>();
const errors: Record<string, number> = {};
let started = 0;
let settled = 0;
let failed = 0;
let closedByPeer = 0;
let ready = false;
const t0 = performance.now();

/** True once `data` holds a complete response with a 2xx status. */
function responseComplete(data: Buffer): 'incomplete' | 'ok' | 'bad' {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd < 0) return 'incomplete';
  const head = data.subarray(0, headEnd).toString('latin1');
  if (!/^HTTP\/1\.1 2\d\d /.test(head)) return 'bad';
  const length = head.match(/\r\ncontent-length:\s*(\d+)/i);
  if (length) return data.length >= headEnd + 4 + Number(length[1]) ? 'ok' : 'incomplete';
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    return data.subarray(headEnd).includes('\r\n0\r\n\r\n') ? 'ok' : 'incomplete';
  }
  return 'bad'; // close-delimited: the connection would not stay open
}

function fail(kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  failed++;
}

function openOne(): void {
  started++;
  const socket = connect({ host: '127.0.0.1', port });
  let received = Buffer.alloc(0);
  let done = false;
  const finish = (outcome: 'ok' | string) => {
    if (done) return;
    done = true;
    settled++;
    if (outcome === 'ok') {
      socket.setTimeout(0);
      idle.add(socket);
    } else {
      fail(outcome);
      socket.destroy();
    }
    received = Buffer.alloc(0);
    next();
  };
  socket.setTimeout(SETUP_TIMEOUT_MS, () => finish('timeout'));
  socket.on('connect', () => socket.write(REQUEST));
  socket.on('data', (chunk: Buffer) => {
    if (done) return; // nothing more is expected on an idle connection
    received = Buffer.concat([received, chunk]);
    const state = responseComplete(received);
    if (state === 'ok') finish('ok');
    else if (state === 'bad') finish('bad response');
  });
  socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
  socket.on('close', () => {
    if (!done) {
      finish('closed before response');
      return;
    }
    if (!idle.delete(socket)) return; // failed earlier, already counted
    if (ready) closedByPeer++;
    else fail('closed while idle'); // while the others were still being opened
  });
}

function next(): void {
  while (started < total && started - settled < parallel) openOne();
  if (settled === total && !ready) {
    ready = true;
    const report: IdleReady = {
      phase: 'ready',
      opened: idle.size,
      failed,
      errors,
      ms: performance.now() - t0,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
}

process.stdin.on('data', () => {
  const report: IdleFinal = { phase: 'final', stillOpen: idle.size, closedByPeer };
  process.stdout.write(`${JSON.stringify(report)}\n`, () => {
    for (const s of idle) s.destroy();
    process.exit(0);
  });
});
process.stdin.on('end', () => process.exit(0));

next();
