/**
 * Graceful stop (SIGTERM, what `docker stop` sends to the seed's nginx
 * container): requests in flight complete, new connections are refused from
 * the moment the stop begins, idle keep-alive connections are closed, and the
 * process exits 0 once the last request is done.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { keepAliveAgent, openRequest } from '../support/http-client.js';
import { backendCount, SEED_SERVER_NAME, startSeed, type SeedEnv } from '../support/seed.js';
import { collect, sleep, waitUntil } from '../support/wait.js';

/** Resolves with the connect error code, or 'connected' if a connection was accepted. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Starts GET /api/slow?ms=N over HTTPS and resolves once a backend is handling it. */
async function slowInFlight(env: SeedEnv, ms: number) {
  const response = openRequest({ port: env.httpsPort, tls: env.tls, path: `/api/slow?ms=${ms}`, headers: { host: SEED_SERVER_NAME } });
  response.catch(() => {}); // observed by the test later
  await waitUntil(async () => (await Promise.all(env.backends.ports.map((p) => backendCount(p, '/api/slow')))).some((n) => n === 1),
    { timeoutMs: 3000, description: 'the slow request to reach a backend' });
  return response;
}

describe('seed graceful stop (SIGTERM)', () => {
  test('a slow request in flight completes with 200; new connections are refused from the start; exit code 0 right after', async () => {
    const env = await startSeed();
    try {
      const slowStarted = performance.now();
      const slow = await slowInFlight(env, 1500);
      const stopAt = performance.now();
      let exitedAt = -1;
      const exited = env.fulcrum.stop('SIGTERM', 10_000).then((code) => {
        exitedAt = performance.now();
        return code;
      });
      await env.fulcrum.waitForLog((e) => e.msg === 'stopping', 3000);
      // Both listeners stop accepting promptly, long before the slow request is done.
      for (const port of [env.httpsPort, env.httpPort]) {
        const refused = await waitUntil(async () => ((await tryConnect(port)) === 'ECONNREFUSED' ? performance.now() : 0),
          { timeoutMs: 1000, intervalMs: 10, description: `port ${port} to refuse connections` });
        assert.ok(refused - stopAt < 500, `port ${port} refused ${(refused - stopAt).toFixed(0)} ms after SIGTERM`);
      }

      const res = await slow;
      const body = (await collect(res)).toString();
      const answeredAt = performance.now();
      assert.equal(res.statusCode, 200);
      assert.match(body, /^slow 1500 ms from backend_\d\n$/);
      assert.equal(res.headers.connection, 'close', 'the response says the connection closes');
      assert.ok(answeredAt - slowStarted >= 1450, 'the request ran its full time');

      assert.equal(await exited, 0, `exit code\n${env.fulcrum.stderrText()}`);
      assert.ok(exitedAt >= answeredAt - 50, 'exited after the slow response was delivered');
      assert.ok(exitedAt - answeredAt < 1500, `exited ${(exitedAt - answeredAt).toFixed(0)} ms after the last response`);
      assert.ok(env.fulcrum.logs.some((e) => e.msg === 'stopped'));
    } finally {
      await env.stop();
    }
  });

  test('an idle keep-alive connection is closed at once and does not hold up the exit', async () => {
    const env = await startSeed();
    const agent = keepAliveAgent({ tls: true, maxSockets: 1 });
    try {
      assert.equal((await env.https('/api/hello', { agent })).status, 200);
      const idleSockets = Object.values(agent.freeSockets).flat();
      assert.equal(idleSockets.length, 1, 'one idle keep-alive connection');
      let idleClosedAt = -1;
      idleSockets[0]!.once('close', () => { idleClosedAt = performance.now(); });
      const slow = await slowInFlight(env, 800);

      const stopAt = performance.now();
      const exited = env.fulcrum.stop('SIGTERM', 4000); // SIGKILLs and rejects after 4 s
      exited.catch(() => {});
      await waitUntil(() => idleClosedAt > 0, { timeoutMs: 1000, description: 'the idle keep-alive connection to be closed' });
      assert.ok(idleClosedAt - stopAt < 500);
      const res = await slow;
      assert.equal(res.statusCode, 200);
      await collect(res);
      const answeredAt = performance.now();
      assert.equal(await exited, 0);
      assert.ok(performance.now() - answeredAt < 1500, 'exits right after the slow response');
    } finally {
      agent.destroy();
      await env.stop();
    }
  });

  test('a connection opened before the stop is answered when its request comes 200 ms into the stop; a silent one is closed within a second', async () => {
    const env = await startSeed();
    const open = async (): Promise<{ socket: net.Socket; text: () => string; closedAt: Promise<number> }> => {
      const socket = net.connect({ host: '127.0.0.1', port: env.httpPort });
      await once(socket, 'connect');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      return { socket, text: () => Buffer.concat(chunks).toString('latin1'), closedAt: once(socket, 'close').then(() => performance.now()) };
    };
    try {
      const late = await open();
      const silent = await open();
      await sleep(100); // accepted by fulcrum, not only by the kernel
      const stopAt = performance.now();
      const exited = env.fulcrum.stop('SIGTERM', 5000);
      exited.catch(() => {});
      await env.fulcrum.waitForLog((e) => e.msg === 'stopping', 3000);
      await sleep(200);
      late.socket.write(`GET /api/hello HTTP/1.1\r\nHost: ${SEED_SERVER_NAME}\r\n\r\n`);
      await late.closedAt;
      assert.match(late.text(), /^HTTP\/1\.1 301 /, `the late request was answered (got ${JSON.stringify(late.text().slice(0, 40))})`);
      assert.match(late.text(), /\r\nconnection: close\r\n/i, 'and told the connection closes');
      const silentClosed = await silent.closedAt;
      assert.equal(silent.text(), '');
      assert.ok(silentClosed - stopAt < 1500, `the silent connection closed ${(silentClosed - stopAt).toFixed(0)} ms after SIGTERM`);
      assert.equal(await exited, 0);
    } finally {
      await env.stop();
    }
  });

  test('SIGTERM with nothing in flight (and no client connected) exits 0 at once', async () => {
    const env = await startSeed();
    try {
      assert.equal((await env.https('/api/hello')).status, 200);
      await sleep(50);
      const started = performance.now();
      assert.equal(await env.fulcrum.stop('SIGTERM', 5000), 0);
      assert.ok(performance.now() - started < 1500, `exited in ${(performance.now() - started).toFixed(0)} ms`);
    } finally {
      await env.stop();
    }
  });
});
