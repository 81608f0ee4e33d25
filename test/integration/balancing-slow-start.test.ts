/**
 * slow_start with real backend processes: a backend that comes back (its
 * health check passes again) gets a small share of the traffic at first, and
 * its share grows over slow_start until it carries its full weight.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { requestLoop, startBalancing, type Answer } from '../support/balancing.js';
import { request } from '../support/http-client.js';

const SLOW_START_MS = 3000;

describe('slow_start', () => {
  test('a recovered backend ramps from a small share to half of the traffic over slow_start', async () => {
    const env = await startBalancing(2, ({ server }) =>
      ['health_check interval=100ms fails=1 passes=1 uri=/healthz;', server(0), server(1, `slow_start=${SLOW_START_MS}ms`)].join('\n'),
    );
    try {
      await request({ port: env.backends.ports[1]!, path: '/healthz/fail', timeoutMs: 2000 });
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server marked down', 3000);
      await request({ port: env.backends.ports[1]!, path: '/healthz/fail', timeoutMs: 2000 });
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server back up', 3000);
      const upAt = performance.now();
      const answers = await requestLoop(env.port, { max: 50_000, maxMs: SLOW_START_MS + 900 });
      const share = (from: number, to: number): number => {
        const window = answers.filter((a: Answer) => a.at - upAt >= from && a.at - upAt < to);
        assert.ok(window.length >= 20, `enough requests between ${from} and ${to} ms: ${window.length}`);
        return window.filter((a) => a.backend === 'backend_2').length / window.length;
      };
      const shares = [share(0, 600), share(900, 1500), share(1800, 2400), share(SLOW_START_MS + 200, SLOW_START_MS + 900)];
      const text = shares.map((s) => s.toFixed(2)).join(' ');
      assert.ok(shares[0]! < 0.2, `starts small: ${text}`);
      assert.ok(shares[0]! < shares[1]! && shares[1]! < shares[2]! && shares[2]! < shares[3]!, `grows: ${text}`);
      assert.ok(Math.abs(shares[3]! - 0.5) <= 0.05, `full weight after slow_start: ${text}`);
      assert.ok(answers.every((a) => a.status === 200));
    } finally {
      await env.stop();
    }
  });
});
