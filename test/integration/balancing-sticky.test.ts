/**
 * Sticky sessions (`sticky cookie`) with real backend processes:
 *
 * - the first response sets a cookie whose value names no address; 100
 *   requests carrying it reach the same backend, while cookie-less requests
 *   are balanced as usual;
 * - the session moves only when its backend goes down (killed), and the
 *   response re-binds the cookie; the new binding holds;
 * - a draining server keeps its sessions and gets no new ones;
 * - the cookie stays valid across worker processes, reloads and restarts
 *   (with a configured secret).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ask, countBy, requestLoop, startBalancing, type Answer } from '../support/balancing.js';
import { startFulcrum } from '../support/fulcrum.js';

const STICKY = 'sticky cookie srv_id path=/ httponly secret=integration-test-secret;';

function setCookie(a: Answer): string | undefined {
  const raw = a.response?.headers['set-cookie'];
  const line = Array.isArray(raw) ? raw.find((c) => c.startsWith('srv_id=')) : undefined;
  return line === undefined ? undefined : line.slice('srv_id='.length, line.indexOf(';'));
}

const withCookie = (value: string) => ({ headers: { cookie: `theme=dark; srv_id=${value}` } });

describe('sticky cookie', () => {
  test('100 requests with the cookie stay on one backend; the session moves only when that backend goes down', async () => {
    const env = await startBalancing(3, ({ server }) => [STICKY, server(0, 'max_fails=1 fail_timeout=30s'), server(1, 'max_fails=1 fail_timeout=30s'), server(2, 'max_fails=1 fail_timeout=30s')].join('\n'));
    try {
      const first = await ask(env.port);
      const cookie = setCookie(first);
      assert.ok(cookie !== undefined, `Set-Cookie: ${JSON.stringify(first.response?.headers['set-cookie'])}`);
      assert.match(String(first.response!.headers['set-cookie']), /^srv_id=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly$/);
      for (const port of env.backends.ports) assert.ok(!Buffer.from(cookie, 'base64url').toString('latin1').includes(String(port)) && !cookie.includes(String(port)));
      const home = first.backend;

      const bound = await requestLoop(env.port, { max: 100, maxMs: 10_000, request: withCookie(cookie) });
      assert.deepEqual(countBy(bound), { [home]: 100 });
      assert.ok(bound.every((a) => setCookie(a) === undefined), 'no Set-Cookie while the cookie is right');
      assert.match(String(bound[0]!.response!.headers['x-fulcrum-decision']), /answered: sticky cookie srv_id/);
      // Clients without the cookie are still balanced round robin.
      assert.equal(Object.keys(countBy(await requestLoop(env.port, { max: 30, maxMs: 5000 }))).length, 3);

      // The session's backend dies: the next request goes elsewhere and re-binds the cookie; the new binding holds.
      await env.backends.kill(env.backends.names.indexOf(home));
      const moved = await ask(env.port, '/hello', withCookie(cookie));
      assert.equal(moved.status, 200);
      assert.notEqual(moved.backend, home);
      const rebound = setCookie(moved);
      assert.ok(rebound !== undefined && rebound !== cookie, 'the response re-binds the cookie');
      const after = await requestLoop(env.port, { max: 50, maxMs: 10_000, request: withCookie(rebound) });
      assert.deepEqual(countBy(after), { [moved.backend]: 50 });
      // The old cookie keeps landing on a live server too (its server is failed).
      assert.equal((await ask(env.port, '/hello', withCookie(cookie))).status, 200);
    } finally {
      await env.stop();
    }
  });

  test('a draining server keeps its sessions and gets no new ones', async () => {
    const env = await startBalancing(2, ({ server }) => [STICKY, server(0), server(1)].join('\n'));
    try {
      const sessions: Record<string, string> = {};
      for (let i = 0; i < 4 && Object.keys(sessions).length < 2; i++) {
        const a = await ask(env.port);
        sessions[a.backend] = setCookie(a)!;
      }
      await env.fulcrum.reload(env.config([STICKY, env.server(0, 'drain'), env.server(1)].join('\n')));
      assert.deepEqual(countBy(await requestLoop(env.port, { max: 20, maxMs: 5000, request: withCookie(sessions.backend_1!) })), { backend_1: 20 });
      const fresh = await requestLoop(env.port, { max: 20, maxMs: 5000 });
      assert.deepEqual(countBy(fresh), { backend_2: 20 });
      const d = await ask(env.port, '/hello', withCookie(sessions.backend_1!));
      assert.match(String(d.response!.headers['x-fulcrum-decision']), /sticky cookie srv_id \(server draining: only its sessions\)/);
    } finally {
      await env.stop();
    }
  });

  test('the cookie is valid in every worker, after a reload and after a restart', async () => {
    const env = await startBalancing(3, ({ server }) => [STICKY, server(0), server(1), server(2)].join('\n'), { main: 'worker_processes 2;' });
    try {
      const first = await ask(env.port);
      const cookie = setCookie(first)!;
      // New connections go to either worker.
      assert.deepEqual(countBy(await requestLoop(env.port, { max: 40, maxMs: 8000, request: withCookie(cookie) })), { [first.backend]: 40 });
      await env.fulcrum.reload();
      assert.deepEqual(countBy(await requestLoop(env.port, { max: 10, maxMs: 5000, request: withCookie(cookie) })), { [first.backend]: 10 });
      await env.fulcrum.stop();
      env.fulcrum = await startFulcrum({ config: env.config([STICKY, env.server(0), env.server(1), env.server(2)].join('\n')) });
      assert.deepEqual(countBy(await requestLoop(env.port, { max: 10, maxMs: 5000, request: withCookie(cookie) })), { [first.backend]: 10 });
    } finally {
      await env.stop();
    }
  });
});
