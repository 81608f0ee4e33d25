/**
 * Active health checks with real backend processes:
 *
 * - a backend whose /healthz starts answering 503 stops getting traffic
 *   within interval x fall, and gets it back after rise passes; the log says
 *   "upstream server marked down" / "back up" with source active and why;
 * - the debug header explains the skip ("unhealthy since ...");
 * - a reload keeps the verdict of a server it keeps (no reset, no second log);
 * - with worker_processes 2, each server is probed once (by the supervisor),
 *   not once per worker, and every worker follows the verdict.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ask, countBy, healthLogs, requestLoop, startBalancing, type Answer } from '../support/balancing.js';
import { request } from '../support/http-client.js';
import { sleep, waitUntil } from '../support/wait.js';

const INTERVAL = 200;
const FALL = 2;
const RISE = 2;
const CHECK = `health_check interval=${INTERVAL}ms fails=${FALL} passes=${RISE} uri=/healthz timeout=500ms;`;

/** Flips a backend's /healthz between 200 and 503. */
async function toggleHealth(port: number): Promise<boolean> {
  const r = await request({ port, path: '/healthz/fail', timeoutMs: 2000 });
  return (JSON.parse(r.body.toString()) as { healthy: boolean }).healthy;
}

async function healthzCount(port: number): Promise<number> {
  const r = await request({ port, path: '/count', timeoutMs: 2000 });
  return (JSON.parse(r.body.toString()) as { paths: Record<string, number> }).paths['/healthz'] ?? 0;
}

describe('active health checks', () => {
  test('a failing probe takes a backend out within interval x fall; it is back after rise passes', async () => {
    const env = await startBalancing(3, ({ server }) => [CHECK, server(0), server(1), server(2)].join('\n'));
    try {
      // Every backend is probed and serves.
      const warm = await requestLoop(env.port, { max: 30, maxMs: 5000 });
      assert.deepEqual(countBy(warm), { backend_1: 10, backend_2: 10, backend_3: 10 });

      assert.equal(await toggleHealth(env.backends.ports[1]!), false);
      const failedAt = performance.now();
      // Requests every few ms, until backend_2 has had no request for a second (bounded: 6 s).
      const during = await requestLoop(env.port, {
        max: 2000,
        maxMs: 6000,
        until: (a) => a.at(-1)!.at - failedAt > 1500 && lastFrom(a, 'backend_2') < a.at(-1)!.at - 1000,
      });
      const lastHit = lastFrom(during, 'backend_2');
      const outAfter = lastHit - failedAt;
      // interval x fall, plus one probe's latency and the scheduling slack of a loaded test machine.
      assert.ok(outAfter <= INTERVAL * FALL + 250, `backend_2 still got traffic ${outAfter.toFixed(0)} ms after its health check failed`);
      assert.ok(during.every((a) => a.status === 200), JSON.stringify(countBy(during)));
      const down = await env.fulcrum.waitForLog((e) => e.msg === 'upstream server marked down', 1000);
      assert.equal(down.server, `127.0.0.1:${env.backends.ports[1]}`);
      assert.equal(down.source, 'active');
      assert.match(String(down.reason), /^2 health check\(s\) failed in a row, last: status 503 on GET \/healthz$/);

      const skipped = await ask(env.port);
      assert.match(String(skipped.response!.headers['x-fulcrum-decision']), new RegExp(`skipped 127\\.0\\.0\\.1:${env.backends.ports[1]} \\(unhealthy since \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z: \\d+ health check\\(s\\) failed in a row, last: status 503 on GET /healthz\\)`));

      assert.equal(await toggleHealth(env.backends.ports[1]!), true);
      const healedAt = performance.now();
      const after = await requestLoop(env.port, { max: 2000, maxMs: 5000, until: (a) => a.some((x) => x.backend === 'backend_2') });
      const back = after.find((a) => a.backend === 'backend_2');
      assert.ok(back !== undefined, 'backend_2 gets traffic again');
      assert.ok(back.at - healedAt <= INTERVAL * RISE + 250, `back after ${(back.at - healedAt).toFixed(0)} ms`);
      const up = await env.fulcrum.waitForLog((e) => e.msg === 'upstream server back up', 1000);
      assert.equal(up.source, 'active');
      assert.match(String(up.reason), /^2 health check\(s\) passed in a row \(status 200\)$/);
      assert.equal(healthLogs(env.fulcrum).length, 2);
    } finally {
      await env.stop();
    }
  });

  test('a reload keeps the verdict of a server it keeps, and stops probing a removed one', async () => {
    const env = await startBalancing(3, ({ server }) => [CHECK, server(0), server(1), server(2)].join('\n'));
    try {
      await toggleHealth(env.backends.ports[1]!);
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server marked down', 3000);
      // Reload: backend_3 removed, a parameter changed; backend_2 is still unhealthy at once (no reset to healthy).
      await env.fulcrum.reload(env.config([CHECK, env.server(0, 'weight=2'), env.server(1)].join('\n')));
      const answers = await requestLoop(env.port, { max: 20, maxMs: 5000 });
      assert.deepEqual(countBy(answers), { backend_1: 20 });
      assert.equal(healthLogs(env.fulcrum).length, 1, 'no new health log after the reload');
      const probes = await healthzCount(env.backends.ports[2]!);
      await sleep(INTERVAL * 3);
      assert.equal(await healthzCount(env.backends.ports[2]!), probes, 'the removed backend is no longer probed');
      await toggleHealth(env.backends.ports[1]!);
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server back up', 3000);
      const later = await requestLoop(env.port, { max: 30, maxMs: 5000 });
      assert.ok((countBy(later).backend_2 ?? 0) >= 8, JSON.stringify(countBy(later)));
    } finally {
      await env.stop();
    }
  });

  test('worker_processes 2: each server is probed once, by the supervisor, and every worker follows the verdict', async () => {
    const env = await startBalancing(2, ({ server }) => [CHECK, server(0), server(1)].join('\n'), { main: 'worker_processes 2;' });
    try {
      await sleep(INTERVAL); // the first probes start within one interval
      const before = await healthzCount(env.backends.ports[0]!);
      const started = performance.now();
      await sleep(INTERVAL * 10);
      const probes = (await healthzCount(env.backends.ports[0]!)) - before;
      const expected = (performance.now() - started) / INTERVAL;
      // Once per interval (a probe takes a little time): about 10, and well below the 20 two probing workers would make.
      assert.ok(probes >= expected * 0.6 && probes <= expected * 1.25, `${probes} probes in ${expected.toFixed(1)} intervals`);

      await toggleHealth(env.backends.ports[1]!);
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server marked down', 3000);
      // New connections are spread over both workers by the kernel: none reaches backend_2.
      const answers: Answer[] = await requestLoop(env.port, { max: 60, maxMs: 5000 });
      assert.deepEqual(countBy(answers), { backend_1: 60 });
      assert.equal(healthLogs(env.fulcrum).length, 1, `logged once: ${JSON.stringify(healthLogs(env.fulcrum))}`);
      await toggleHealth(env.backends.ports[1]!);
      await env.fulcrum.waitForLog((e) => e.msg === 'upstream server back up', 3000);
      await waitUntil(async () => (countBy(await requestLoop(env.port, { max: 20, maxMs: 3000 })).backend_2 ?? 0) >= 5, { timeoutMs: 3000, description: 'both workers use backend_2 again' });
    } finally {
      await env.stop();
    }
  });
});

function lastFrom(answers: readonly Answer[], backend: string): number {
  let t = -Infinity;
  for (const a of answers) if (a.backend === backend) t = a.at;
  return t;
}
