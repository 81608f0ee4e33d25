/**
 * Soak (npm run test:soak): the slow-client timeouts with nothing configured,
 * so nginx's defaults apply (client_header_timeout, client_body_timeout and
 * send_timeout 60s). The fast suite (test/reliability/slow-clients.test.ts)
 * checks the same cut-offs with 2s configured; this one checks the defaults
 * are nginx's, on one fulcrum with all three slow clients at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnBackends } from '../support/backends.js';
import { get, jsonLines, RawClient, startProber, startProxy } from '../support/reliability.js';
import { waitUntil } from '../support/wait.js';

const DEFAULT_MS = 60_000;

test('nginx\'s defaults: slowloris, slow POST and a non-reading client are each cut at 60 s, not before; others are served meanwhile', { timeout: 120_000 }, async (t) => {
  const backends = await spawnBackends(1);
  const proxy = await startProxy({
    http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }\naccess_log stdout json;`,
    server: 'location /api { proxy_pass http://u; }',
  });
  const prober = startProber(proxy.port, '/api/hello', { intervalMs: 500, timeoutMs: 2000 });
  const loris = await RawClient.connect(proxy.port);
  const slowPost = await RawClient.connect(proxy.port);
  const reader = await RawClient.connect(proxy.port, { keepBytes: 1024 });
  let dripTimer: NodeJS.Timeout | undefined;
  try {
    const started = performance.now();
    await loris.write('GET /api/hello HTTP/1.1\r\nHost: x\r\n');
    dripTimer = setInterval(() => void loris.write('X'), 5000);
    await slowPost.write('POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
    reader.socket.pause();
    await reader.write(get('/api/bytes?n=1000000000&reader=1'));

    await waitUntil(() => loris.closed && slowPost.closed, { timeoutMs: DEFAULT_MS + 10_000, intervalMs: 250, description: 'the slowloris and slow POST connections cut' });
    const readerLine = await waitUntil(() => jsonLines(proxy.fulcrum).find((l) => String(l.uri).includes('reader=1')), { timeoutMs: 10_000, intervalMs: 250, description: 'the non-reading request ended' });
    const probe = await prober.stop();
    const lorisAt = loris.closedAt! - started;
    const postAt = slowPost.closedAt! - started;
    const readerMs = Number(readerLine.request_time) * 1000;
    t.diagnostic(`slowloris cut at ${Math.round(lorisAt)} ms, slow POST at ${Math.round(postAt)} ms, non-reader after ${Math.round(readerMs)} ms; probes ${probe.ok}/${probe.sent}`);
    for (const [name, ms] of [['slowloris', lorisAt], ['slow POST', postAt], ['non-reader', readerMs]] as const) {
      assert.ok(ms >= DEFAULT_MS - 500 && ms <= DEFAULT_MS + 3000, `${name} cut after ${Math.round(ms)} ms (default 60s)`);
    }
    assert.equal(loris.responses()[0]?.status, 408);
    assert.equal(slowPost.responses()[0]?.status, 408);
    assert.deepEqual(probe.failures, []);
  } finally {
    clearInterval(dripTimer);
    await prober.stop();
    for (const c of [loris, slowPost, reader]) c.destroy();
    await proxy.stop();
    await backends.stop();
  }
});
