/**
 * Load-aware methods with real backend processes:
 *
 * - least_conn sends new requests away from a backend busy with slow
 *   requests (round robin, the control, does not), also when the slow
 *   requests are in another worker process (remoteActive);
 * - least_time prefers a fast backend over one with 50 ms of added latency
 *   (a fault proxy in front of it), and still measures the slow one now and
 *   then.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { ask, countBy, requestLoop, startBalancing, type Answer } from '../support/balancing.js';
import { spawnBackends } from '../support/backends.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startFulcrum } from '../support/fulcrum.js';
import { balancingConfig } from '../support/balancing.js';
import { keepAliveAgent } from '../support/http-client.js';
import { freePort } from '../support/ports.js';
import { sleep } from '../support/wait.js';

/** Starts `n` slow requests (kept in flight `ms`), waits until they reached fulcrum; returns the pending answers. */
async function slowRequests(port: number, n: number, ms: number): Promise<Promise<Answer>[]> {
  const pending = Array.from({ length: n }, () => ask(port, `/slow?ms=${ms}`, { timeoutMs: ms + 5000 }));
  await sleep(150);
  return pending;
}

describe('least_conn', () => {
  for (const method of ['least_conn', 'round_robin'] as const) {
    test(`${method}: fast requests while one backend is busy with slow ones ${method === 'least_conn' ? 'avoid it' : '(control: it keeps its share)'}`, async () => {
      const env = await startBalancing(3, ({ server }) => [method === 'least_conn' ? 'least_conn;' : '', server(0), server(1), server(2)].join('\n'));
      try {
        // Two slow requests: with either method they land on backend_1 and backend_2.
        const slow = await slowRequests(env.port, 2, 1500);
        const fast = await requestLoop(env.port, { max: 30, maxMs: 1000 });
        const counts = countBy(fast);
        if (method === 'least_conn') {
          assert.deepEqual(counts, { backend_3: 30 });
          assert.match(String(fast[0]!.response!.headers['x-fulcrum-decision']), /least connections: 1 in flight with this one/);
        } else {
          assert.deepEqual(counts, { backend_1: 10, backend_2: 10, backend_3: 10 });
        }
        const slowAnswers = await Promise.all(slow);
        assert.deepEqual(countBy(slowAnswers), { backend_1: 1, backend_2: 1 });
        // Once they are done, least_conn spreads again.
        assert.equal(Object.keys(countBy(await requestLoop(env.port, { max: 9, maxMs: 3000 }))).length, 3);
      } finally {
        await env.stop();
      }
    });
  }

  test('worker_processes 2: a slow request in one worker makes the other worker avoid that backend too (remoteActive)', async () => {
    // The slow request is bound to backend_1 by a sticky cookie; X-Worker says which worker answered.
    const env = await startBalancing(2, ({ server }) => ['least_conn;', 'sticky cookie sid secret=t;', server(0), server(1)].join('\n'), {
      main: 'worker_processes 2;',
      location: 'add_header X-Worker $pid;',
    });
    const agents: http.Agent[] = [];
    try {
      let cookie = '';
      for (let i = 0; i < 10 && cookie === ''; i++) {
        const a = await ask(env.port);
        if (a.backend === 'backend_1') cookie = String(a.response!.headers['set-cookie']).split(';')[0]!;
      }
      assert.notEqual(cookie, '', 'a session bound to backend_1');
      // Two keep-alive connections that the kernel gave to different workers.
      const byWorker = new Map<string, http.Agent>();
      for (let i = 0; i < 40 && byWorker.size < 2; i++) {
        const agent = keepAliveAgent({ maxSockets: 1 });
        agents.push(agent);
        const a = await ask(env.port, '/hello', { agent, headers: { cookie } });
        const worker = String(a.response?.headers['x-worker']);
        if (!byWorker.has(worker)) byWorker.set(worker, agent);
      }
      assert.equal(byWorker.size, 2, 'connections on both workers');
      const [slowAgent, fastAgent] = [...byWorker.values()] as [http.Agent, http.Agent];
      const slow = ask(env.port, '/slow?ms=2500', { agent: slowAgent, timeoutMs: 8000, headers: { cookie } });
      await sleep(400); // the slow worker's load report (every ~100 ms) reaches the other worker
      // The other worker only knows of the slow request through remoteActive; alone, it would see two idle
      // backends and alternate between them.
      const fast = await requestLoop(env.port, { max: 40, maxMs: 1500, request: { agent: fastAgent } });
      const slowAnswer = await slow;
      assert.equal(slowAnswer.backend, 'backend_1');
      assert.notEqual(String(slowAnswer.response!.headers['x-worker']), String(fast[0]!.response!.headers['x-worker']));
      assert.ok(fast.length >= 20, `${fast.length} fast requests`);
      assert.deepEqual(countBy(fast), { backend_2: fast.length });
    } finally {
      for (const agent of agents) agent.destroy();
      await env.stop();
    }
  });
});

describe('least_time', () => {
  test('prefers a fast backend over one with 50 ms of added latency, measuring the slow one now and then', async () => {
    const backends = await spawnBackends(2);
    const proxy = await startFaultProxy({ targetPort: backends.ports[1]!, mode: { latency: 50 } });
    const port = await freePort();
    const upstream = `    least_time header;\n    server 127.0.0.1:${backends.ports[0]};\n    server 127.0.0.1:${proxy.port};`;
    const fulcrum = await startFulcrum({ config: balancingConfig(port, upstream) }).catch(async (err: unknown) => {
      await proxy.close();
      await backends.stop();
      throw err;
    });
    try {
      const answers = await requestLoop(port, { max: 300, maxMs: 20_000 });
      const counts = countBy(answers);
      assert.equal(answers.length, 300);
      assert.ok((counts.backend_1 ?? 0) >= 285, `the fast backend gets at least 95%: ${JSON.stringify(counts)}`);
      assert.ok((counts.backend_2 ?? 0) >= 1, `the slow one is still measured: ${JSON.stringify(counts)}`);
      const d = String(answers.at(-1)!.response!.headers['x-fulcrum-decision']);
      assert.match(d, /^least_time header; 127\.0\.0\.1:\d+ answered: least_time header: [0-9.]+ ms peak-EWMA/);
      // The slow backend gets fast again: after its next exploration sample it is used again.
      proxy.setMode('pass');
      const later = await requestLoop(port, { max: 20_000, maxMs: 15_000, until: (a) => a.slice(-50).filter((x) => x.backend === 'backend_2').length >= 10 });
      assert.ok(later.slice(-50).filter((x) => x.backend === 'backend_2').length >= 10, JSON.stringify(countBy(later)));
    } finally {
      await fulcrum.stop().catch(() => fulcrum.kill());
      await proxy.close();
      await backends.stop();
    }
  });
});
