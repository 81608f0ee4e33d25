/**
 * Reliability, issue 3 "Slow clients and limits": slowloris, slow POST and a
 * client that never reads are each cut off at their timeout
 * (client_header_timeout, client_body_timeout, send_timeout) while other
 * clients are served normally and fulcrum's memory stays bounded; Debian's
 * slowhttptest (all four modes) reports the service available throughout;
 * connections over worker_connections are refused cleanly.
 *
 * Short timeouts (2s) are configured so the suite stays fast; the code paths
 * are the ones nginx's 60s defaults take.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends } from '../support/backends.js';
import { request } from '../support/http-client.js';
import { tempDir } from '../support/tmp.js';
import { alive, exchange, get, jsonLines, openFds, RawClient, rssMiB, sampler, startProber, startProxy, type Proxy } from '../support/reliability.js';
import { sleep, waitUntil } from '../support/wait.js';

const TIMEOUT_MS = 2000;
/** The sweep checks deadlines every 100 ms; allow for it and a loaded machine. */
const LATE_MS = 1200;

/** Opens `n` connections and sends `first`, then one byte of `drip` every `everyMs` on each, until stopped. */
async function dripClients(port: number, n: number, first: string, drip: string, everyMs: number): Promise<{ clients: RawClient[]; stop(): void }> {
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await RawClient.connect(port);
    void c.write(first);
    clients.push(c);
  }
  let k = 0;
  const timer = drip === '' ? undefined : setInterval(() => {
    for (const c of clients) if (!c.closed) void c.write(drip[k % drip.length]!);
    k++;
  }, everyMs);
  return {
    clients,
    stop: () => {
      clearInterval(timer);
      for (const c of clients) c.destroy();
    },
  };
}

async function proxyWithBackend(settings: string): Promise<{ proxy: Proxy; stop(): Promise<void> }> {
  const backends = await spawnBackends(1);
  const proxy = await startProxy({
    http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }\n${settings}`,
    server: 'location /api { proxy_pass http://u; }',
  });
  return {
    proxy,
    stop: async () => {
      await proxy.stop();
      await backends.stop();
    },
  };
}

function cutTimes(clients: RawClient[], from: (c: RawClient) => number): number[] {
  return clients.map((c) => (c.closedAt === undefined ? Infinity : c.closedAt - from(c)));
}

describe('slow clients: each is cut off at its timeout while others are served and memory stays bounded', () => {
  test('slowloris: 200 connections sending a header byte every 250 ms get 408 at client_header_timeout (2s)', async (t) => {
    const env = await proxyWithBackend(`client_header_timeout ${TIMEOUT_MS / 1000}s;`);
    const pid = env.proxy.fulcrum.pid;
    try {
      await request({ port: env.proxy.port, path: '/api/hello' });
      const baseline = rssMiB(pid);
      const rss = sampler(() => rssMiB(pid), 100);
      const prober = startProber(env.proxy.port, '/api/hello', { intervalMs: 100, timeoutMs: 1500 });
      const loris = await dripClients(env.proxy.port, 200, 'GET /api/hello HTTP/1.1\r\nHost: x\r\n', 'X-Slowloris: aaaaaaaaaaaaaaaaaaaa\r\n', 250);
      try {
        const allClosed = await waitUntil(() => loris.clients.every((c) => c.closed), { timeoutMs: TIMEOUT_MS + 4000, description: 'every slowloris connection closed' }).catch(() => false);
        const probe = await prober.stop();
        const peak = Math.max(...rss.stop());
        const cut = cutTimes(loris.clients, (c) => c.openedAt);
        const statuses = new Set(loris.clients.map((c) => c.responses()[0]?.status ?? 'none'));
        t.diagnostic(`cut after ${Math.round(Math.min(...cut))}..${Math.round(Math.max(...cut))} ms; probes ${probe.ok}/${probe.sent}, slowest ${Math.round(probe.maxLatencyMs)} ms; RSS ${baseline.toFixed(1)} -> peak ${peak.toFixed(1)} MiB`);
        assert.ok(allClosed, 'every slowloris connection was closed');
        assert.ok(Math.min(...cut) >= TIMEOUT_MS - 100 && Math.max(...cut) <= TIMEOUT_MS + LATE_MS, `cut between ${Math.round(Math.min(...cut))} and ${Math.round(Math.max(...cut))} ms`);
        assert.deepEqual([...statuses], [408], 'each got a 408 first');
        assert.deepEqual(probe.failures, [], 'other clients were served');
        assert.ok(probe.sent >= 15 && probe.maxLatencyMs < 1000, `probes ${probe.ok}/${probe.sent}, slowest ${Math.round(probe.maxLatencyMs)} ms`);
        assert.ok(peak - baseline < 40, `RSS grew by ${(peak - baseline).toFixed(1)} MiB`);
      } finally {
        loris.stop();
      }
    } finally {
      await env.stop();
    }
  });

  test('slow POST: a body that stalls, or trickles slower than client_body_timeout (2s), gets 408 there; a faster trickle is not cut', async (t) => {
    const env = await proxyWithBackend(`client_body_timeout ${TIMEOUT_MS / 1000}s;`);
    const pid = env.proxy.fulcrum.pid;
    try {
      await request({ port: env.proxy.port, path: '/api/hello' });
      const baseline = rssMiB(pid);
      const rss = sampler(() => rssMiB(pid), 100);
      const prober = startProber(env.proxy.port, '/api/hello', { intervalMs: 100, timeoutMs: 1500 });
      const head = 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n';
      // 100 connections that send 10 body bytes and stall; 100 that send a byte every 3 s.
      const stalled = await dripClients(env.proxy.port, 100, head + 'x'.repeat(10), '', 0);
      const trickle = await dripClients(env.proxy.port, 100, head + 'x', 'x', 3000);
      // Control: a body trickling a byte every 500 ms (under the 2 s timeout) for 4 s completes.
      const patient = await RawClient.connect(env.proxy.port);
      await patient.write('POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n');
      const bodyStart = performance.now();
      const patientDone = (async () => {
        for (let i = 0; i < 8; i++) {
          await sleep(500);
          await patient.write('p');
        }
      })();
      try {
        const sent = performance.now();
        const all = [...stalled.clients, ...trickle.clients];
        const allClosed = await waitUntil(() => all.every((c) => c.closed), { timeoutMs: TIMEOUT_MS + 4000, description: 'every slow POST closed' }).catch(() => false);
        await patientDone;
        assert.ok(await patient.until(() => patient.responses()[0]?.complete === true, 3000), 'the patient client got its answer');
        const probe = await prober.stop();
        const peak = Math.max(...rss.stop());
        const cut = cutTimes(all, () => sent);
        t.diagnostic(`cut after ${Math.round(Math.min(...cut))}..${Math.round(Math.max(...cut))} ms; patient body took ${Math.round(performance.now() - bodyStart)} ms; probes ${probe.ok}/${probe.sent}; RSS ${baseline.toFixed(1)} -> peak ${peak.toFixed(1)} MiB`);
        assert.ok(allClosed, 'every slow POST was cut');
        assert.ok(Math.min(...cut) >= TIMEOUT_MS - 200 && Math.max(...cut) <= TIMEOUT_MS + LATE_MS, `cut between ${Math.round(Math.min(...cut))} and ${Math.round(Math.max(...cut))} ms`);
        assert.deepEqual([...new Set(all.map((c) => c.responses()[0]?.status ?? 'none'))], [408]);
        const answer = patient.responses()[0]!;
        assert.equal(answer.status, 200, 'a body whose pauses stay under the timeout is not cut, however long it takes');
        assert.equal((JSON.parse(answer.body.toString()) as { bytes: number }).bytes, 8);
        assert.deepEqual(probe.failures, []);
        assert.ok(probe.sent >= 15 && probe.maxLatencyMs < 1000, `probes ${probe.ok}/${probe.sent}, slowest ${Math.round(probe.maxLatencyMs)} ms`);
        assert.ok(peak - baseline < 40, `RSS grew by ${(peak - baseline).toFixed(1)} MiB`);
      } finally {
        stalled.stop();
        trickle.stop();
        patient.destroy();
      }
    } finally {
      await env.stop();
    }
  });

  test('a client that never reads a large response is cut at send_timeout (2s); fulcrum does not buffer the response', async (t) => {
    const env = await proxyWithBackend(`send_timeout ${TIMEOUT_MS / 1000}s;\naccess_log stdout json;`);
    const pid = env.proxy.fulcrum.pid;
    try {
      await request({ port: env.proxy.port, path: '/api/hello' });
      const baseline = rssMiB(pid);
      const rss = sampler(() => rssMiB(pid), 100);
      const prober = startProber(env.proxy.port, '/api/hello', { intervalMs: 100, timeoutMs: 1500 });
      const TOTAL = 500_000_000;
      const readers: RawClient[] = [];
      for (let i = 0; i < 10; i++) {
        const c = await RawClient.connect(env.proxy.port, { keepBytes: 1024 });
        c.socket.pause(); // never reads
        await c.write(get(`/api/bytes?n=${TOTAL}&reader=${i}`));
        readers.push(c);
      }
      try {
        const logged = () => jsonLines(env.proxy.fulcrum).filter((l) => String(l.uri).includes('reader='));
        const allLogged = await waitUntil(() => logged().length === readers.length, { timeoutMs: TIMEOUT_MS + 5000, description: 'an access log line for every non-reading client' }).catch(() => false);
        const probe = await prober.stop();
        const peak = Math.max(...rss.stop());
        const lines = logged();
        const times = lines.map((l) => Number(l.request_time) * 1000);
        const sentBytes = lines.map((l) => Number(l.body_bytes_sent));
        t.diagnostic(`request_time ${Math.round(Math.min(...times))}..${Math.round(Math.max(...times))} ms; sent ${Math.round(Math.max(...sentBytes) / 1e6)} MB at most of ${TOTAL / 1e6} MB; RSS ${baseline.toFixed(1)} -> peak ${peak.toFixed(1)} MiB`);
        assert.ok(allLogged, `every non-reading client's request ended (${lines.length}/${readers.length})`);
        // The response blocks within milliseconds (the socket buffers fill), so the request ends at about send_timeout.
        assert.ok(Math.min(...times) >= TIMEOUT_MS - 100 && Math.max(...times) <= TIMEOUT_MS + LATE_MS + 500, `ended after ${JSON.stringify(times.map(Math.round))} ms`);
        assert.ok(Math.max(...sentBytes) < TOTAL / 10, 'only what the socket buffers took was sent');
        assert.ok(peak - baseline < 80, `RSS grew by ${(peak - baseline).toFixed(1)} MiB for ${readers.length} x ${TOTAL / 1e6} MB responses`);
        assert.deepEqual(probe.failures, []);
        assert.ok(probe.maxLatencyMs < 1000, `slowest probe ${Math.round(probe.maxLatencyMs)} ms`);
        // What the client sees when it finally reads: a response cut short, the connection gone.
        for (const c of readers) c.socket.resume();
        await waitUntil(() => readers.every((c) => c.closed), { timeoutMs: 10_000, description: 'the cut connections end' });
        for (const c of readers) assert.ok(c.bytes < TOTAL, `a short body (${c.bytes} bytes)`);
      } finally {
        for (const c of readers) c.destroy();
      }
    } finally {
      await env.stop();
    }
  });
});

describe('slowhttptest (Debian) against fulcrum on loopback', () => {
  const SLOWHTTPTEST = '/usr/bin/slowhttptest';

  test('slowloris (-H), slow body (-B), range (-R) and slow read (-X) at once, 150 connections each for 8 s: the service is available throughout', async (t) => {
    if (!existsSync(SLOWHTTPTEST)) {
      t.skip('slowhttptest is not installed (Debian package slowhttptest)');
      return;
    }
    // The seed's worker_connections and nginx's default timeouts (60s: none fires during the run).
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      events: 'worker_connections 1024;',
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    const dir = tempDir('fulcrum-slowhttptest-');
    const base = `http://127.0.0.1:${proxy.port}`;
    const modes: Array<{ name: string; args: string[] }> = [
      { name: 'H', args: ['-H', '-i', '1', '-u', `${base}/api/hello`] },
      { name: 'B', args: ['-B', '-i', '1', '-s', '8192', '-u', `${base}/api/echo`] },
      { name: 'R', args: ['-R', '-a', '10', '-b', '3000', '-u', `${base}/api/hello`] },
      { name: 'X', args: ['-X', '-k', '2', '-w', '10', '-y', '20', '-n', '1', '-z', '32', '-u', `${base}/api/bytes?n=2000000`] },
    ];
    // 5 s, not slowhttptest's 2 s (-p 2, its own probe, checked below): the probes reach the one backend the attacks
    // load too (the slow read alone pulls 150 x 2 MB from it), and with the suite's other test file busy on the same
    // two cores the slowest probe, 0.6-0.7 s when this test runs alone, once took just over 2 s in a full run.
    // Unavailability still shows: a probe that gets no answer fails.
    const prober = startProber(proxy.port, '/api/hello', { intervalMs: 100, timeoutMs: 5000 });
    try {
      const runs = modes.map((m) => new Promise<{ name: string; code: number | null; output: string }>((resolve) => {
        const child = spawn(SLOWHTTPTEST, [...m.args, '-c', '150', '-r', '100', '-l', '8', '-p', '2', '-g', '-o', join(dir, m.name)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
        child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
        const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('close', (code) => {
          clearTimeout(kill);
          resolve({ name: m.name, code, output });
        });
      }));
      const results = await Promise.all(runs);
      const probe = await prober.stop();
      const problems: string[] = [];
      for (const r of results) {
        const csvPath = join(dir, `${r.name}.csv`);
        if (!existsSync(csvPath)) {
          problems.push(`-${r.name}: no CSV report (exit ${r.code}): ${r.output.slice(-300)}`);
          continue;
        }
        // Seconds,Closed,Pending,Connected,Service Available (the last is 0 when the probe failed).
        const rows = readFileSync(csvPath, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
        const unavailable = rows.filter((row) => row[4] === 0).map((row) => row[0]);
        const maxConnected = Math.max(...rows.map((row) => row[3]!));
        const maxClosed = Math.max(...rows.map((row) => row[1]!));
        t.diagnostic(`-${r.name}: ${rows.length} s, up to ${maxConnected} connections open, ${maxClosed} closed, service unavailable at ${JSON.stringify(unavailable)}`);
        if (unavailable.length > 0) problems.push(`-${r.name}: service unavailable at seconds ${unavailable.join(', ')}`);
        // The range attack's requests are answered at once (the backend ignores Range), so its
        // connections do not stay open: that it ran shows in the closed count instead.
        if (r.name === 'R' ? maxClosed < 50 : maxConnected < 100) problems.push(`-${r.name}: the attack did not run (${maxConnected} open, ${maxClosed} closed)`);
      }
      t.diagnostic(`our own probes: ${probe.ok}/${probe.sent} answered 200, slowest ${Math.round(probe.maxLatencyMs)} ms`);
      assert.deepEqual(problems, []);
      assert.deepEqual(probe.failures, []);
      assert.ok(probe.sent >= 50);
      assert.ok(alive(proxy.fulcrum.pid));
    } finally {
      await prober.stop();
      await proxy.stop();
      await backends.stop();
    }
  });
});

describe('limits: connections over worker_connections are refused cleanly', () => {
  test('worker_connections 20: the 21st connection and beyond are closed at once without a byte; the others keep working; a freed slot is reused', async (t) => {
    const backends = await spawnBackends(1);
    const proxy = await startProxy({
      events: 'worker_connections 20;',
      http: `upstream u { server 127.0.0.1:${backends.ports[0]}; }`,
      server: 'location /api { proxy_pass http://u; }',
    });
    const held: RawClient[] = [];
    try {
      // 20 keep-alive connections, each proven accepted by one answered request.
      for (let i = 0; i < 20; i++) {
        const c = await RawClient.connect(proxy.port);
        await c.write(get('/api/hello'));
        assert.ok(await c.until(() => c.responses()[0]?.complete === true, 3000), `connection ${i + 1} served`);
        held.push(c);
      }
      const fdsBefore = openFds(proxy.fulcrum.pid);
      const excess = await Promise.all(Array.from({ length: 50 }, async () => {
        const c = await RawClient.connect(proxy.port);
        await c.write(get('/api/hello'));
        await c.waitForClose(2000);
        return c;
      }));
      const refusedIn = excess.map((c) => (c.closedAt ?? Infinity) - c.openedAt);
      t.diagnostic(`excess connections closed after ${Math.round(Math.min(...refusedIn))}..${Math.round(Math.max(...refusedIn))} ms`);
      assert.ok(excess.every((c) => c.closed && c.bytes === 0), 'every excess connection closed without a byte');
      assert.ok(Math.max(...refusedIn) < 1000, 'and at once');
      assert.ok(openFds(proxy.fulcrum.pid) <= fdsBefore + 2, 'no descriptor is left behind by the refused connections');

      // The 20 held connections still work.
      for (const c of held) await c.write(get('/api/hello'));
      for (const c of held) assert.ok(await c.until(() => c.responses().length === 2 && c.responses()[1]!.complete, 3000), 'a held connection still serves');
      assert.ok(held.every((c) => c.responses()[1]!.status === 200));

      // Free one slot: a new connection is served.
      held.pop()!.destroy();
      await sleep(200);
      const r = await exchange(proxy.port, get('/api/hello'));
      assert.equal(r.responses[0]?.status, 200, 'a freed slot is used again');
    } finally {
      for (const c of held) c.destroy();
      await proxy.stop();
      await backends.stop();
    }
  });

  test(
    'per-client limits (nginx limit_conn_zone / limit_conn): connections over the limit from one address are refused with 503, others are served',
    async () => {
      const proxy = await startProxy({
        http: 'limit_conn_zone $binary_remote_addr zone=perip:10m;',
        server: 'limit_conn perip 2;\nlocation /slow { return 200 "ok\\n"; }',
      });
      try {
        const held = [await RawClient.connect(proxy.port), await RawClient.connect(proxy.port)];
        for (const c of held) await c.write('GET /slow HTTP/1.1\r\nHost: x\r\n'); // heads in progress hold their slots
        const third = await exchange(proxy.port, get('/slow'), { waitClose: true });
        assert.equal(third.responses[0]?.status, 503);
        for (const c of held) c.destroy();
      } finally {
        await proxy.stop();
      }
    },
  );
});
