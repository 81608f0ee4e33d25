/**
 * Soak (npm run test:soak), issue 3 "Faults": the long runs.
 *
 * - The chaos run: steady load for 60 s (CHAOS_SECONDS) through fulcrum to
 *   three real backend processes while a chaos loop SIGKILLs a random one
 *   and restarts it a moment later, again and again. Every idempotent
 *   request must succeed; the summary says how many were sent, retried on
 *   another server and failed. POSTs are sent too: they may fail (502) when
 *   their backend dies under them, since they are never replayed; the
 *   summary counts them apart.
 * - The keep-alive race, swept: POSTs to a Node backend (keepAliveTimeout
 *   2 s) after idle gaps from 1.8 s to 2.2 s, where a proxy that ignores the
 *   backend's Keep-Alive hint reuses a connection as the backend closes it.
 *   None may fail.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnBackends } from '../support/backends.js';
import { keepAliveAgent, request } from '../support/http-client.js';
import { alive, percentile, rssMiB, sampler, startProxy } from '../support/reliability.js';
import { sleep } from '../support/wait.js';

const CHAOS_SECONDS = Number(process.env['CHAOS_SECONDS'] ?? 60);
const FAIL_TIMEOUT_S = 2;

interface Outcome {
  method: string;
  path: string;
  status: number;
  error?: string;
  tried: string;
  ms: number;
}

function once(port: number, method: string, path: string, body: string | undefined, agent: http.Agent | false): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'content-length': Buffer.byteLength(body) } }, (res) => {
      let length = 0;
      res.on('data', (d: Buffer) => { length += d.length; });
      res.on('end', () => {
        const expected = res.headers['content-length'];
        const truncated = method !== 'HEAD' && expected !== undefined && Number(expected) !== length;
        resolve({ method, path, status: truncated ? -1 : res.statusCode ?? 0, tried: String(res.headers['x-fulcrum-upstream'] ?? ''), ms: performance.now() - started, ...(truncated ? { error: 'truncated body' } : {}) });
      });
      res.on('error', (err) => resolve({ method, path, status: 0, error: err.message, tried: '', ms: performance.now() - started }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ method, path, status: 0, error: err.code ?? err.message, tried: '', ms: performance.now() - started }));
    req.end(body);
  });
}

describe('soak: chaos', () => {
  test(`chaos run: ${CHAOS_SECONDS} s of steady load while backends are SIGKILLed and restarted at random; every idempotent request succeeds`, { timeout: (CHAOS_SECONDS + 60) * 1000 }, async (t) => {
    const backends = await spawnBackends(3);
    const proxy = await startProxy({
      http: `upstream u {\n${backends.ports.map((p) => `  server 127.0.0.1:${p} max_fails=1 fail_timeout=${FAIL_TIMEOUT_S}s;`).join('\n')}\n}`,
      server: 'location /api { proxy_pass http://u; debug_header on; proxy_connect_timeout 1s; proxy_read_timeout 5s; }',
    });
    const agent = keepAliveAgent({ maxSockets: 4 });
    const rss = sampler(() => rssMiB(proxy.fulcrum.pid), 1000);
    const outcomes: Outcome[] = [];
    const events: string[] = [];
    let kills = 0;
    const restarts: Array<Promise<void>> = [];
    let running = true;
    const runStart = performance.now();
    /** performance.now() since when each backend has been up (undefined while down). */
    const upSince: Array<number | undefined> = backends.ports.map(() => runStart);

    const chaos = (async () => {
      while (running) {
        await sleep(500 + Math.random() * 1500);
        if (!running) break;
        // Keep one backend that has been up longer than fail_timeout (so fulcrum may use it again) alive at all times.
        const now = performance.now();
        const victim = Math.floor(Math.random() * backends.ports.length);
        const anchor = backends.ports.some((_, j) => j !== victim && upSince[j] !== undefined && now - upSince[j]! > (FAIL_TIMEOUT_S + 1) * 1000);
        if (upSince[victim] === undefined || !anchor) continue;
        upSince[victim] = undefined;
        await backends.kill(victim);
        kills++;
        events.push(`${((performance.now() - runStart) / 1000).toFixed(1)}s kill backend_${victim + 1}`);
        const downFor = 300 + Math.random() * 2000;
        restarts.push(sleep(downFor).then(async () => {
          await backends.restart(victim);
          upSince[victim] = performance.now();
          events.push(`${((performance.now() - runStart) / 1000).toFixed(1)}s backend_${victim + 1} back`);
        }));
      }
    })();

    const mix: Array<[string, string, string | undefined]> = [
      ['GET', '/api/hello', undefined],
      ['GET', '/api/whoami', undefined],
      ['GET', '/api/slow?ms=50', undefined],
      ['HEAD', '/api/hello', undefined],
      ['PUT', '/api/echo', 'put-body '.repeat(20)],
      ['DELETE', '/api/hello', undefined],
      ['GET', '/api/bytes?n=2000', undefined],
      ['POST', '/api/echo', 'post-body'],
    ];
    const worker = async (w: number) => {
      let i = w;
      while (running) {
        const [method, path, body] = mix[i++ % mix.length]!;
        outcomes.push(await once(proxy.port, method, path, body, w % 2 === 0 ? agent : false));
      }
    };
    try {
      const workers = Array.from({ length: 8 }, (_, w) => worker(w));
      await sleep(CHAOS_SECONDS * 1000);
      running = false;
      await Promise.all(workers);
      await chaos;
      await Promise.all(restarts); // the last restarts land
      const peak = Math.max(...rss.stop());

      const idempotent = outcomes.filter((o) => o.method !== 'POST');
      const posts = outcomes.filter((o) => o.method === 'POST');
      const failed = idempotent.filter((o) => o.status !== 200);
      const retried = outcomes.filter((o) => o.tried.includes(','));
      const latencies = idempotent.map((o) => o.ms);
      const summary = {
        seconds: CHAOS_SECONDS,
        kills,
        sent: outcomes.length,
        idempotent: { sent: idempotent.length, ok: idempotent.length - failed.length, failed: failed.length },
        retriedOnAnotherServer: retried.length,
        post: { sent: posts.length, ok: posts.filter((o) => o.status === 200).length, failed502: posts.filter((o) => o.status === 502).length, other: posts.filter((o) => o.status !== 200 && o.status !== 502).length },
        latencyMs: { p50: Math.round(percentile(latencies, 50)), p99: Math.round(percentile(latencies, 99)), max: Math.round(Math.max(...latencies)) },
        fulcrumPeakRssMiB: Number(peak.toFixed(1)),
      };
      console.log(`chaos summary: ${JSON.stringify(summary)}`);
      t.diagnostic(`chaos summary: sent ${summary.sent}, retried on another server ${summary.retriedOnAnotherServer}, failed ${failed.length} idempotent / ${summary.post.sent - summary.post.ok} POST (of ${summary.post.sent}); ${kills} kills`);
      t.diagnostic(`events: ${events.join('; ')}`);
      assert.ok(kills >= CHAOS_SECONDS / 4, `the chaos loop killed backends (${kills} times)`);
      assert.ok(idempotent.length >= CHAOS_SECONDS * 50, `steady load (${idempotent.length} idempotent requests)`);
      assert.ok(retried.length > 0, 'some requests were retried on another server');
      assert.deepEqual(failed.slice(0, 20), [], `${failed.length} idempotent requests failed`);
      assert.equal(summary.post.other, 0, 'a POST gets 200 or 502, nothing else');
      assert.ok(alive(proxy.fulcrum.pid));
      // After the storm, every backend is back in the rotation.
      await sleep(FAIL_TIMEOUT_S * 1000);
      const names = new Set<string>();
      for (let i = 0; i < 12; i++) names.add(String((await request({ port: proxy.port, path: '/api/hello' })).headers['x-backend']));
      assert.equal(names.size, 3, `all three backends serve again: ${[...names].join(', ')}`);
    } finally {
      running = false;
      await chaos.catch(() => undefined);
      await Promise.allSettled(restarts);
      rss.stop();
      agent.destroy();
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('soak: the keep-alive race, swept', () => {
  test('POSTs to a Node backend with keepAliveTimeout 2 s after idle gaps of 1.80 .. 2.20 s: none fails (the Keep-Alive hint is honoured)', { timeout: 120_000 }, async (t) => {
    const backends = await spawnBackends(1, { keepAliveTimeoutMs: 2000 });
    const proxy = await startProxy({
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    try {
      const results: Array<{ gapMs: number; status: number; error?: string }> = [];
      await request({ port: proxy.port, path: '/api/echo', method: 'POST', body: 'warm' });
      for (let gap = 1800; gap <= 2200; gap += 20) {
        await sleep(gap);
        const r = await once(proxy.port, 'POST', '/api/echo', `gap ${gap}`, false);
        results.push({ gapMs: gap, status: r.status, ...(r.error ? { error: r.error } : {}) });
      }
      const failed = results.filter((r) => r.status !== 200);
      t.diagnostic(`${results.length} POSTs after idle gaps 1.80..2.20 s: ${results.length - failed.length} ok`);
      assert.deepEqual(failed, []);
    } finally {
      await proxy.stop();
      await backends.stop();
    }
  });
});
