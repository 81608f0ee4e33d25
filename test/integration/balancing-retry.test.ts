/**
 * Retries beyond nginx, with real backend processes:
 *
 * - a retry budget (`retry_budget 20% min=0`) caps the retries sent to an
 *   upstream whose servers fail, where nginx would retry every request;
 * - `retry_idempotency_key on`: a POST carrying Idempotency-Key is retried on
 *   the next server, one without is not (nginx's rule for POST);
 * - a client that hangs up is never counted as the server's failure.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { ask, balancingConfig, countBy, healthLogs, requestLoop } from '../support/balancing.js';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../support/fault-proxy.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePort } from '../support/ports.js';
import { sleep } from '../support/wait.js';

interface Env {
  backends: TestBackends;
  proxies: FaultProxy[];
  fulcrum: FulcrumProcess;
  port: number;
}

/** Backends behind fault proxies (`broken` of them, in `mode`), then the healthy ones. */
async function start(healthy: number, broken: number, upstreamExtra: string, location = '', mode: FaultMode = 'reset'): Promise<Env> {
  const backends = await spawnBackends(healthy + broken);
  const proxies = await Promise.all(Array.from({ length: broken }, (_, i) => startFaultProxy({ targetPort: backends.ports[i]!, mode })));
  const ports = [...proxies.map((p) => p.port), ...backends.ports.slice(broken)];
  const port = await freePort();
  const upstream = [upstreamExtra, ...ports.map((p) => `    server 127.0.0.1:${p} max_fails=0;`)].join('\n');
  try {
    const fulcrum = await startFulcrum({ config: balancingConfig(port, upstream, { location }) });
    return { backends, proxies, fulcrum, port };
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()));
    await backends.stop();
    throw err;
  }
}

async function stop(env: Env): Promise<void> {
  await env.fulcrum.stop().catch(() => env.fulcrum.kill());
  await Promise.all(env.proxies.map((p) => p.close()));
  await env.backends.stop();
}

describe('retry budget', () => {
  for (const budget of [false, true]) {
    test(budget ? 'retry_budget 20%: retries stop at 20% of the requests, the rest get 502' : 'control, no budget (nginx): every failed request is retried', async () => {
      const env = await start(1, 2, budget ? '    retry_budget 20% min=0;' : '');
      try {
        const answers = await requestLoop(env.port, { max: 90, maxMs: 20_000 });
        const counts = countBy(answers);
        if (!budget) {
          assert.deepEqual(counts, { backend_3: 90 });
          return;
        }
        // 30 requests go to the healthy server first; 60 fail first and need one or two retries each.
        const ok = counts.backend_3 ?? 0;
        const retriedOk = ok - 30;
        assert.ok(retriedOk >= 5 && retriedOk <= 0.2 * 90 + 1, `requests saved by a retry: ${retriedOk} (${JSON.stringify(counts)})`);
        assert.equal((counts['status 502'] ?? 0) + ok, 90);
        const refused = answers.find((a) => a.status === 502)!;
        assert.match(String(refused.response!.headers['x-fulcrum-decision']), /no retry: retry budget exhausted/);
        const logged = await env.fulcrum.waitForLog((e) => e.msg === 'retry budget exhausted: failed requests are not retried for now', 1000);
        assert.equal(logged.upstream, 'u');
      } finally {
        await stop(env);
      }
    });
  }
});

describe('retry_idempotency_key', () => {
  test('a POST is retried on the next server only when it carries an Idempotency-Key', async () => {
    // The broken backend gets the request, then its connection closes before any response byte: the case an
    // Idempotency-Key is for (the backend may have done the work).
    const env = await start(1, 1, '', 'retry_idempotency_key on;', { closeAfter: 0 });
    const post = (headers: Record<string, string>) => ask(env.port, '/echo', { method: 'POST', body: 'order=42', headers: { 'content-type': 'text/plain', ...headers } });
    try {
      // Round robin: requests 1 and 3 go to the broken server first.
      const plain = await post({});
      assert.equal(plain.status, 502, 'a POST without the key is not replayed');
      assert.equal((await post({})).backend, 'backend_2');
      const keyed = await post({ 'idempotency-key': 'a5f1c1e0' });
      assert.equal(keyed.status, 200, keyed.error);
      assert.equal(keyed.backend, 'backend_2');
      assert.match(String(keyed.response!.headers['x-fulcrum-upstream']), /^127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+$/);
      assert.match(String(keyed.response!.headers['x-fulcrum-decision']), /tried 127\.0\.0\.1:\d+ \(failed: /);
    } finally {
      await stop(env);
    }
  });
});

describe('client aborts', () => {
  test('a client that hangs up is never counted as the server failing (max_fails=1)', async () => {
    const backends = await spawnBackends(2);
    const port = await freePort();
    const upstream = backends.ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join('\n');
    const fulcrum = await startFulcrum({ config: balancingConfig(port, upstream) }).catch(async (err: unknown) => {
      await backends.stop();
      throw err;
    });
    try {
      const aborts = Array.from({ length: 4 }, () => {
        const ac = new AbortController();
        const p = fetch(`http://127.0.0.1:${port}/slow?ms=3000`, { signal: ac.signal }).catch(() => undefined);
        return { ac, p };
      });
      await sleep(200);
      for (const a of aborts) a.ac.abort();
      await Promise.all(aborts.map((a) => a.p));
      await sleep(200);
      assert.deepEqual(healthLogs(fulcrum), []);
      assert.deepEqual(countBy(await requestLoop(port, { max: 10, maxMs: 5000 })), { backend_1: 5, backend_2: 5 });
    } finally {
      await fulcrum.stop().catch(() => fulcrum.kill());
      await backends.stop();
    }
  });
});
