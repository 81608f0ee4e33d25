/**
 * The seed's upstream: `server ubuntu_backend_N:8080 max_fails=3 fail_timeout=30s;`
 * for three backends, with nginx's default `proxy_next_upstream error timeout`.
 *
 * - A backend that dies (SIGKILL, like `docker kill`) costs no idempotent
 *   request: connect errors and resets before the response are retried on the
 *   next server, and after max_fails failures the dead one is skipped.
 * - max_fails/fail_timeout with nginx's semantics, on a copy of the seed with
 *   only fail_timeout shortened (1s): 3 failures take a server out; it gets
 *   no request during fail_timeout; then exactly one trial request; a failed
 *   trial takes it out for another fail_timeout, a good one brings it back.
 * - The only server of an upstream is never taken out.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBackends } from '../support/backends.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { keepAliveAgent, type HttpResponse } from '../support/http-client.js';
import { backendCount, SEED_SERVER_NAME, startSeed, type SeedEnv } from '../support/seed.js';
import { sleep } from '../support/wait.js';

interface Outcome { status: number; backend: string; error?: string }

async function get(env: SeedEnv, path: string, agent?: ReturnType<typeof keepAliveAgent>): Promise<Outcome> {
  try {
    const r: HttpResponse = await env.https(path, { agent: agent ?? false, headers: { host: SEED_SERVER_NAME }, timeoutMs: 5000 });
    return { status: r.status, backend: String(r.headers['x-backend'] ?? '') };
  } catch (err) {
    return { status: 0, backend: '', error: (err as Error).message };
  }
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.status === 200 ? o.backend : `status ${o.status}${o.error ? ` (${o.error})` : ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('seed upstream: a killed backend costs no idempotent request', () => {
  test('backend_2 SIGKILLed during a run of 300 GETs (keep-alive and new connections): every one gets 200', async (t) => {
    const env = await startSeed();
    const agent = keepAliveAgent({ tls: true, maxSockets: 3 });
    try {
      // Warm up: keep-alive connections from fulcrum to every backend are pooled.
      const warm = await Promise.all(Array.from({ length: 30 }, () => get(env, '/api/hello', agent)));
      assert.deepEqual(tally(warm), { backend_1: 10, backend_2: 10, backend_3: 10 });

      const outcomes: Outcome[] = [];
      const paths = ['/api/hello', '/api/whoami', '/api/slow?ms=40', '/api/bytes?n=20000'];
      let issued = 0;
      let killedAt = -1;
      const TOTAL = 300;
      const deadline = performance.now() + 20_000;
      const worker = async (keepAlive: boolean) => {
        while (issued < TOTAL && performance.now() < deadline) {
          const i = issued++;
          if (i === 60) {
            killedAt = outcomes.length;
            void env.backends.kill(1); // while requests are in flight, some of them on backend_2
          }
          outcomes.push(await get(env, paths[i % paths.length]!, keepAlive ? agent : undefined));
        }
      };
      await Promise.all([worker(true), worker(true), worker(true), worker(false), worker(false), worker(false)]);
      assert.equal(outcomes.length, TOTAL);
      const failed = outcomes.filter((o) => o.status !== 200);
      assert.deepEqual(failed, [], `failed requests: ${JSON.stringify(tally(outcomes))}`);
      // Once it was dead, backend_2 answered nothing (a few answered just before the kill landed).
      const late = outcomes.slice(killedAt + 20).filter((o) => o.backend === 'backend_2');
      assert.deepEqual(late, []);
      const counts = tally(outcomes.slice(killedAt + 20));
      assert.ok(counts.backend_1! > 80 && counts.backend_3! > 80, `the survivors share the load: ${JSON.stringify(counts)}`);
      const down = env.fulcrum.logs.filter((e) => e.msg === 'upstream server marked down');
      assert.equal(down.length, 1, `one "marked down" log: ${JSON.stringify(down)}`);
      assert.equal(down[0]!.server, `127.0.0.1:${env.backends.ports[1]}`);
      t.diagnostic(`after the kill: ${JSON.stringify(counts)}`);
    } finally {
      agent.destroy();
      await env.stop();
    }
  });
});

describe('seed upstream: what is retried, what counts as a failure (proxy_next_upstream error timeout)', () => {
  test('a POST whose backend dies mid-request is not retried on another backend: 502, and only that backend saw it', async () => {
    const env = await startSeed();
    try {
      const r = await env.https('/api/crash', { method: 'POST', body: 'payload', headers: { host: SEED_SERVER_NAME }, timeoutMs: 5000 });
      assert.equal(r.status, 502);
      assert.ok(r.body.length < 1024 && !/127\.0\.0\.1|ECONN|Error|at /.test(r.body.toString()), `a short body without internals: ${r.body.toString()}`);
      await sleep(100);
      const alive = env.backends.ports.map((_, i) => env.backends.pid(i) !== undefined);
      assert.deepEqual(alive.filter((a) => !a).length, 1, `exactly one backend crashed: ${JSON.stringify(alive)}`);
      for (let i = 0; i < 3; i++) {
        if (!alive[i]) continue;
        assert.equal(await backendCount(env.backends.ports[i]!, '/api/crash'), 0, `backend_${i + 1} never got the POST`);
      }
      // The others still serve.
      const next = await Promise.all(Array.from({ length: 4 }, () => get(env, '/api/hello')));
      assert.ok(next.every((o) => o.status === 200), JSON.stringify(next));
    } finally {
      await env.stop();
    }
  });

  test('5xx answers are passed to the client and do not take a server out (http_500 is not in proxy_next_upstream)', async () => {
    const env = await startSeed();
    try {
      const outcomes: Array<{ status: number; backend: string }> = [];
      for (let i = 0; i < 12; i++) {
        const r = await env.https('/api/status/500', { headers: { host: SEED_SERVER_NAME } });
        outcomes.push({ status: r.status, backend: String(r.headers['x-backend']) });
      }
      assert.ok(outcomes.every((o) => o.status === 500), JSON.stringify(outcomes));
      assertEveryBackendAnswered(outcomes.map((o) => o.backend), 4);
      assert.equal(env.fulcrum.logs.filter((e) => e.msg === 'upstream server marked down').length, 0);
      const names = (await Promise.all(Array.from({ length: 6 }, () => get(env, '/api/hello')))).map((o) => o.backend);
      assertEveryBackendAnswered(names, 2);
    } finally {
      await env.stop();
    }
  });
});

function assertEveryBackendAnswered(names: string[], times: number): void {
  for (const name of ['backend_1', 'backend_2', 'backend_3']) {
    assert.equal(names.filter((n) => n === name).length, times, `${name} in ${names.join(' ')}`);
  }
}

describe('seed upstream: max_fails/fail_timeout, with fail_timeout shortened to 1s', () => {
  test('3 failures take backend_2 out; no request during fail_timeout; one trial after it; a good trial brings it back', async (t) => {
    const FAIL_TIMEOUT_MS = 1000;
    const backends = await spawnBackends(3);
    const proxy = await startFaultProxy({ targetPort: backends.ports[1]!, mode: 'reset' });
    const env = await startSeed({
      backends,
      upstreamPorts: [backends.ports[0]!, proxy.port, backends.ports[2]!],
      serverParams: `max_fails=3 fail_timeout=${FAIL_TIMEOUT_MS / 1000}s`,
    });
    const agent = keepAliveAgent({ tls: true, maxSockets: 1 });
    try {
      const started = performance.now();
      /** Times (ms since start) at which fulcrum tried backend_2: each try is a new connection to the fault proxy. */
      const tries: number[] = [];
      const outcomes: Array<Outcome & { at: number }> = [];
      let passAt = -1;
      let firstGoodAt = -1;
      let connections = proxy.connections;
      // One request at a time, every ~20 ms, for at most ~6 s and 300 requests.
      for (let i = 0; i < 300 && performance.now() - started < 6000; i++) {
        const o = await get(env, '/api/hello', agent);
        const at = performance.now() - started;
        outcomes.push({ ...o, at });
        if (proxy.connections > connections) {
          for (let k = connections; k < proxy.connections; k++) tries.push(at);
          connections = proxy.connections;
        }
        if (o.backend === 'backend_2' && firstGoodAt < 0) firstGoodAt = at;
        // After the first trial (the 4th try) failed, backend_2 is repaired: the next trial succeeds.
        if (tries.length >= 4 && passAt < 0) {
          proxy.setMode('pass');
          passAt = at;
        }
        if (firstGoodAt >= 0 && outcomes.length - outcomes.findIndex((x) => x.at === firstGoodAt) > 30) break;
        await sleep(20);
      }
      t.diagnostic(`tries of backend_2 at ${tries.map((x) => x.toFixed(0)).join(', ')} ms; repaired at ${passAt.toFixed(0)} ms; first answer from it at ${firstGoodAt.toFixed(0)} ms`);

      assert.deepEqual(outcomes.filter((o) => o.status !== 200), [], 'every request got 200 (failures were retried on the next server)');
      assert.ok(tries.length >= 5, `backend_2 tried ${tries.length} times`);
      const [a1, a2, a3, a4, a5] = tries as [number, number, number, number, number];
      // Taken out after the 3rd failure, not before: the first three tries come in quick succession
      // (taken out after 1 or 2 failures, the 2nd or 3rd try would wait a whole fail_timeout).
      assert.ok(a3 - a1 < FAIL_TIMEOUT_MS / 2, `the first 3 failures within ${(a3 - a1).toFixed(0)} ms (2nd at ${(a2 - a1).toFixed(0)} ms)`);
      // No try during fail_timeout after the 3rd failure; then one trial, promptly.
      assert.ok(a4 - a3 >= FAIL_TIMEOUT_MS - 200, `4th try ${(a4 - a3).toFixed(0)} ms after the 3rd: fail_timeout is ${FAIL_TIMEOUT_MS} ms`);
      assert.ok(a4 - a3 <= FAIL_TIMEOUT_MS + 500, `4th try ${(a4 - a3).toFixed(0)} ms after the 3rd`);
      // The failed trial took it out again for a whole fail_timeout, although it was repaired right away.
      assert.ok(a5 - a4 >= FAIL_TIMEOUT_MS - 200, `5th try ${(a5 - a4).toFixed(0)} ms after the 4th`);
      assert.ok(firstGoodAt >= 0, 'backend_2 answered again');
      assert.ok(firstGoodAt - a4 >= FAIL_TIMEOUT_MS - 200 && firstGoodAt - a4 <= FAIL_TIMEOUT_MS + 500,
        `first answer from backend_2 ${(firstGoodAt - a4).toFixed(0)} ms after the failed trial`);
      assert.equal(outcomes.filter((o) => o.backend === 'backend_2' && o.at < passAt).length, 0);
      // Back in the rotation: it gets its share of what follows.
      const after = outcomes.filter((o) => o.at > firstGoodAt);
      const share = after.filter((o) => o.backend === 'backend_2').length;
      assert.ok(after.length >= 30 && share >= after.length / 3 - 2, `backend_2 answered ${share} of the ${after.length} requests after it came back`);

      const logs = env.fulcrum.logs.filter((e) => e.server === `127.0.0.1:${proxy.port}`).map((e) => e.msg);
      assert.deepEqual(logs, ['upstream server marked down', 'upstream server back up']);
    } finally {
      agent.destroy();
      await env.stop();
      await proxy.close();
      await backends.stop();
    }
  });

  test('failures further apart than fail_timeout, with successes between them, do not add up', async () => {
    // nginx: a success after fail_timeout has passed since the last failure resets the count, so 2 failures
    // 1.1 s apart (max_fails=2 fail_timeout=1s) with traffic between them never take the server out.
    // (Without the successes they would: nginx only resets the count on a success.)
    const backends = await spawnBackends(3);
    const proxy = await startFaultProxy({ targetPort: backends.ports[1]!, mode: 'pass' });
    const env = await startSeed({ backends, upstreamPorts: [backends.ports[0]!, proxy.port, backends.ports[2]!], serverParams: 'max_fails=2 fail_timeout=1s' });
    try {
      for (let round = 0; round < 2; round++) {
        proxy.setMode('reset');
        const before = proxy.connections;
        // Requests until one of them tried backend_2 (and was retried elsewhere).
        for (let i = 0; i < 4 && proxy.connections === before; i++) assert.equal((await get(env, '/api/hello')).status, 200);
        assert.equal(proxy.connections - before, 1, `round ${round}: backend_2 failed once`);
        proxy.setMode('pass');
        await sleep(1100);
        // Traffic after fail_timeout: backend_2 answers, which resets its failure count.
        const answered: string[] = [];
        for (let i = 0; i < 4 && !answered.includes('backend_2'); i++) answered.push((await get(env, '/api/hello')).backend);
        assert.ok(answered.includes('backend_2'), `round ${round}: backend_2 still in the rotation: ${answered.join(' ')}`);
      }
      assert.equal(env.fulcrum.logs.filter((e) => e.msg === 'upstream server marked down').length, 0);
    } finally {
      await env.stop();
      await proxy.close();
      await backends.stop();
    }
  });
});

describe('seed upstream: a single-server upstream', () => {
  test('is never marked down: after many failures, it is tried on every request and serves as soon as it is back', async () => {
    const backends = await spawnBackends(1);
    const proxy = await startFaultProxy({ targetPort: backends.ports[0]!, mode: 'reset' });
    // The seed's own max_fails=3 fail_timeout=30s: if it were marked down, it would stay out for 30 s.
    const env = await startSeed({ backends, upstreamPorts: [proxy.port] });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await get(env, '/api/hello')).status);
      assert.deepEqual(statuses, [502, 502, 502, 502, 502, 502]);
      assert.equal(proxy.connections, 6, 'every request tried the server');
      proxy.setMode('pass');
      const back = await get(env, '/api/hello');
      assert.deepEqual([back.status, back.backend], [200, 'backend_1']);
      assert.equal(env.fulcrum.logs.filter((e) => e.msg === 'upstream server marked down').length, 0);
    } finally {
      await env.stop();
      await proxy.close();
      await backends.stop();
    }
  });
});
