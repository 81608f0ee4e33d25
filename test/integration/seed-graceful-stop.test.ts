/**
 * Graceful stop (SIGTERM, what `docker stop` sends to the seed's nginx
 * container): requests in flight complete, new connections are refused from
 * the moment the stop begins, idle keep-alive connections are closed, and the
 * process exits 0 once the last request is done.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { keepAliveAgent, openRequest } from '../support/http-client.js';
import { backendCount, SEED_SERVER_NAME, startSeed } from '../support/seed.js';
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

describe('seed graceful stop (SIGTERM)', () => {
  test('a slow request in flight completes with 200; new connections are refused; idle ones are closed; exit code 0', async () => {
    const env = await startSeed();
    const agent = keepAliveAgent({ tls: true, maxSockets: 1 });
    try {
      // An idle keep-alive connection, opened before the stop.
      const warm = await env.https('/api/hello', { agent });
      assert.equal(warm.status, 200);
      const idleSockets = Object.values(agent.freeSockets).flat();
      assert.equal(idleSockets.length, 1, 'one idle keep-alive connection');
      let idleClosedAt = -1;
      idleSockets[0]!.once('close', () => { idleClosedAt = performance.now(); });

      // The slow request is at a backend before the signal.
      const slowStarted = performance.now();
      const slow = openRequest({ port: env.httpsPort, tls: env.tls, path: '/api/slow?ms=1500', headers: { host: SEED_SERVER_NAME } });
      await waitUntil(async () => (await Promise.all(env.backends.ports.map((p) => backendCount(p, '/api/slow')))).some((n) => n === 1),
        { timeoutMs: 3000, description: 'the slow request to reach a backend' });

      const stopAt = performance.now();
      let exitedAt = -1;
      const exited = env.fulcrum.stop('SIGTERM', 10_000).then((code) => {
        exitedAt = performance.now();
        return code;
      });
      await env.fulcrum.waitForLog((e) => e.msg === 'stopping', 3000);
      // Both listeners stop accepting promptly.
      for (const port of [env.httpsPort, env.httpPort]) {
        const refused = await waitUntil(async () => ((await tryConnect(port)) === 'ECONNREFUSED' ? performance.now() : 0), { timeoutMs: 1000, intervalMs: 10, description: `port ${port} to refuse connections` });
        assert.ok(refused - stopAt < 500, `port ${port} refused ${(refused - stopAt).toFixed(0)} ms after SIGTERM`);
      }
      await waitUntil(() => idleClosedAt > 0, { timeoutMs: 1000, description: 'the idle keep-alive connection to be closed' });

      const res = await slow;
      const body = (await collect(res)).toString();
      const answeredAt = performance.now();
      assert.equal(res.statusCode, 200);
      assert.match(body, /^slow 1500 ms from backend_\d\n$/);
      assert.equal(res.headers.connection, 'close', 'the response says the connection closes');
      assert.ok(answeredAt - slowStarted >= 1450, 'the request ran its full time');
      await sleep(100);
      assert.equal(await tryConnect(env.httpsPort), 'ECONNREFUSED', 'still refusing while draining');

      assert.equal(await exited, 0, `exit code\n${env.fulcrum.stderrText()}`);
      assert.ok(exitedAt >= answeredAt - 50, 'exited after the slow response was delivered');
      assert.ok(exitedAt - answeredAt < 1500, `exited ${(exitedAt - answeredAt).toFixed(0)} ms after the last response`);
      assert.ok(env.fulcrum.logs.some((e) => e.msg === 'stopped'));
    } finally {
      agent.destroy();
      await env.stop();
    }
  });

  test('SIGTERM with nothing in flight exits 0 at once', async () => {
    const env = await startSeed();
    try {
      assert.equal((await env.https('/api/hello')).status, 200);
      const started = performance.now();
      assert.equal(await env.fulcrum.stop('SIGTERM', 5000), 0);
      assert.ok(performance.now() - started < 1500, `exited in ${(performance.now() - started).toFixed(0)} ms`);
    } finally {
      await env.stop();
    }
  });
});
