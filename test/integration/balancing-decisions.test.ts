/**
 * Decisions you can see: with `debug_header on`, every response says which
 * server answered, which were tried and failed, and why the others were
 * skipped (down since when after how many failures, draining, down in the
 * configuration, full); the log says when a server was marked down and why.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ask, startBalancing } from '../support/balancing.js';
import { sleep } from '../support/wait.js';

describe('debug header', () => {
  test('says who answered, who was tried and failed, and why the others were skipped', async () => {
    const env = await startBalancing(5, ({ server }) =>
      [server(0, 'max_fails=1 fail_timeout=30s'), server(1, 'drain'), server(2, 'down'), server(3), server(4, 'max_conns=1')].join('\n'),
    );
    const label = (i: number): string => `127\\.0\\.0\\.1:${env.backends.ports[i]}`;
    try {
      await env.backends.kill(0);
      // Round robin starts at backend_1 (index 0): it fails, the request is retried.
      const first = await ask(env.port);
      assert.equal(first.status, 200);
      const d1 = String(first.response!.headers['x-fulcrum-decision']);
      assert.match(d1, new RegExp(`^round_robin; ${label(3)} answered: round robin; tried ${label(0)} \\(failed: [^)]+\\); skipped `));
      assert.match(String(first.response!.headers['x-fulcrum-upstream']), new RegExp(`^${label(0)}, ${label(3)}$`));
      const down = await env.fulcrum.waitForLog((e) => e.msg === 'upstream server marked down', 1000);
      assert.equal(down.source, 'passive');
      assert.match(String(down.reason), /^1 failure\(s\) within fail_timeout \(last: .+\); not used for 30000ms$/);

      // A slow request fills backend_5 (max_conns=1).
      const slow = ask(env.port, '/slow?ms=1500', { timeoutMs: 5000 });
      await sleep(200);
      const next = await ask(env.port);
      const d2 = String(next.response!.headers['x-fulcrum-decision']);
      assert.match(d2, new RegExp(`${label(0)} \\(down since \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z after 1 failure\\(s\\) within fail_timeout, last: [^;]+; retried after \\d+ ms\\)`));
      assert.match(d2, new RegExp(`${label(1)} \\(draining: only its sticky sessions\\)`));
      assert.match(d2, new RegExp(`${label(2)} \\(down \\(config or admin API\\)\\)`));
      assert.match(d2, new RegExp(`${label(4)} \\(full: 1 of max_conns 1\\)`));
      assert.equal((await slow).status, 200);
    } finally {
      await env.stop();
    }
  });

  test('a 502 when no server can take the request says why each was skipped', async () => {
    const env = await startBalancing(2, ({ server }) => [server(0, 'down'), server(1, 'drain')].join('\n'));
    try {
      const a = await ask(env.port);
      assert.equal(a.status, 502);
      assert.equal(a.response!.headers['x-fulcrum-upstream'], undefined);
      assert.match(String(a.response!.headers['x-fulcrum-decision']), /^round_robin; no server answered; skipped 127\.0\.0\.1:\d+ \(down \(config or admin API\)\), 127\.0\.0\.1:\d+ \(draining: only its sticky sessions\)$/);
    } finally {
      await env.stop();
    }
  });
});
