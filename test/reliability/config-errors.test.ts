/**
 * Reliability, issue 3 "Slow clients and limits", last item: a config file
 * that is not valid, or valid but wrong (unknown upstream, port in use,
 * unreadable certificate), gets a clear message naming the problem; on
 * reload, the old configuration keeps serving.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFulcrum } from '../support/fulcrum.js';
import { freePort, listenOn } from '../support/ports.js';
import { exchange, get, proxyConfig, RawClient, startProxy, type ProxyConfigParts } from '../support/reliability.js';
import { tempDir } from '../support/tmp.js';

interface BadConfig {
  name: string;
  /** The parts of a config on the test's port; `dir` holds any files it needs. */
  parts(dir: string, busyPort: number): ProxyConfigParts;
  /** What the message must say (beyond the file name). */
  message: RegExp;
  /** Whether FILE:LINE:COL must point into the config (syntax and semantic errors do; bind errors have no line). */
  located: boolean;
}

const GOOD_SERVER = 'location / { return 200 "generation 1\\n"; }';

const BAD: BadConfig[] = [
  {
    name: 'a missing semicolon',
    parts: () => ({ server: 'location / { return 200 "x\\n" }' }),
    message: /unexpected "}"|expected ";"|missing ";"|";"/,
    located: true,
  },
  {
    name: 'an unbalanced brace',
    parts: () => ({ server: 'location / { return 200 "x\\n";' }),
    message: /unexpected end of file|expecting "}"|unclosed|"}"/i,
    located: true,
  },
  {
    name: 'an unknown directive',
    parts: () => ({ server: 'location / { proxy_pas http://127.0.0.1:1; }' }),
    message: /unknown directive "proxy_pas"/,
    located: true,
  },
  {
    name: 'an invalid value',
    parts: () => ({ server: 'client_max_body_size lots;\nlocation / { return 200 "x\\n"; }' }),
    message: /client_max_body_size|invalid/,
    located: true,
  },
  {
    name: 'an unknown upstream (misspelt name in proxy_pass)',
    parts: () => ({ http: 'upstream backend_servers { server 127.0.0.1:9; }', server: 'location / { proxy_pass http://backend_servrs; }' }),
    message: /backend_servrs/,
    located: true,
  },
  {
    name: 'a port in use',
    parts: (_dir, busy) => ({ http: `server { listen 127.0.0.1:${busy}; location / { return 200 "x\\n"; } }`, server: GOOD_SERVER }),
    message: /cannot listen on 127\.0\.0\.1:\d+: address already in use/,
    located: false,
  },
  {
    name: 'an unreadable certificate (a directory)',
    parts: (dir) => {
      mkdirSync(join(dir, 'cert-dir.pem'), { recursive: true });
      writeFileSync(join(dir, 'key.pem'), 'not a key\n');
      return { http: `server { listen 127.0.0.1:{{PORT2}} ssl; ssl_certificate ${join(dir, 'cert-dir.pem')}; ssl_certificate_key ${join(dir, 'key.pem')}; location / { return 200 "x\\n"; } }`, server: GOOD_SERVER };
    },
    message: /cert-dir\.pem/,
    located: false,
  },
  {
    name: 'an invalid certificate (truncated PEM)',
    parts: (dir) => {
      writeFileSync(join(dir, 'truncated.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n');
      writeFileSync(join(dir, 'key2.pem'), 'not a key\n');
      return { http: `server { listen 127.0.0.1:{{PORT2}} ssl; ssl_certificate ${join(dir, 'truncated.pem')}; ssl_certificate_key ${join(dir, 'key2.pem')}; location / { return 200 "x\\n"; } }`, server: GOOD_SERVER };
    },
    message: /truncated\.pem|key2\.pem/,
    located: false,
  },
];

async function withBusyPort<T>(fn: (busyPort: number) => Promise<T>): Promise<T> {
  const busy = net.createServer();
  const busyPort = await listenOn(busy, 0, '127.0.0.1');
  try {
    return await fn(busyPort);
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
}

describe('config errors at start: a clear message naming the problem, exit 1, nothing started', () => {
  for (const bad of BAD) {
    test(bad.name, async () => {
      await withBusyPort(async (busyPort) => {
        const dir = tempDir('fulcrum-badconf-');
        const port = await freePort();
        const port2 = await freePort();
        const text = proxyConfig(port, bad.parts(dir, busyPort)).replaceAll('{{PORT2}}', String(port2));
        const path = join(dir, 'fulcrum.conf');
        writeFileSync(path, text);
        const r = await runFulcrum(['start', '--config', path], { cwd: dir, timeoutMs: 10_000 });
        assert.equal(r.code, 1, `exit 1 (got ${r.code}); stderr:\n${r.stderr}`);
        assert.match(r.stderr, bad.message, r.stderr);
        if (bad.located) assert.match(r.stderr, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `), 'FILE:LINE:COL');
        assert.ok(!/"msg":"ready"/.test(r.stderr), 'never ready');
        assert.ok(!/\n\s+at [\w.<>]+ \(|TypeError|ReferenceError/.test(r.stderr), `no stack trace:\n${r.stderr}`);
        // Nothing listens on the port it was asked to use.
        const probe = await exchange(port, get('/'), { timeoutMs: 500 }).catch((err: NodeJS.ErrnoException) => err.code);
        assert.equal(probe, 'ECONNREFUSED');
      });
    });
  }

  async function check(bad: BadConfig): Promise<string | undefined> {
    const dir = tempDir('fulcrum-badconf-');
    const text = proxyConfig(await freePort(), bad.parts(dir, 1)).replaceAll('{{PORT2}}', String(await freePort()));
    const path = join(dir, 'fulcrum.conf');
    writeFileSync(path, text);
    const r = await runFulcrum(['check', '--config', path], { cwd: dir });
    if (r.code !== 1) return `${bad.name}: exit ${r.code}, wanted 1: ${(r.stdout + r.stderr).trim()}`;
    if (!bad.message.test(r.stdout + r.stderr)) return `${bad.name}: the message does not name the problem: ${(r.stdout + r.stderr).trim()}`;
    return undefined;
  }

  test('`fulcrum check` (nginx -t) reports the same problems without starting, except the bind, which only start can see', async () => {
    const problems: string[] = [];
    for (const bad of BAD.filter((b) => b.located)) {
      const problem = await check(bad);
      if (problem !== undefined) problems.push(problem);
    }
    assert.deepEqual(problems, []);
  });

  test(
    '`fulcrum check` (nginx -t) refuses an unreadable or invalid certificate, as `fulcrum start` does',
    async () => {
      const problems: string[] = [];
      for (const bad of BAD.filter((b) => /certificate/.test(b.name))) {
        const problem = await check(bad);
        if (problem !== undefined) problems.push(problem);
      }
      assert.deepEqual(problems, []);
    },
  );
});

describe('config errors on reload: reported, and the old configuration keeps serving', () => {
  test('every bad config, one after the other: "reload failed" naming the problem; requests (on old and new connections) still get the old answer', async () => {
    await withBusyPort(async (busyPort) => {
      const proxy = await startProxy({ server: GOOD_SERVER });
      const dir = proxy.fulcrum.dir;
      const keptAlive = await RawClient.connect(proxy.port);
      try {
        await keptAlive.write(get('/'));
        assert.ok(await keptAlive.until(() => keptAlive.responses().length === 1, 2000));
        const port2 = await freePort();
        for (const bad of BAD) {
          const text = proxyConfig(proxy.port, bad.parts(dir, busyPort)).replaceAll('{{PORT2}}', String(port2));
          const from = proxy.fulcrum.logs.length;
          await assert.rejects(proxy.fulcrum.reload(text), bad.message, bad.name);
          const failed = proxy.fulcrum.logs.slice(from).find((e) => e.msg === 'reload failed');
          assert.ok(failed !== undefined, `${bad.name}: a "reload failed" log line`);
          const fresh = await exchange(proxy.port, get('/'));
          assert.equal(fresh.responses[0]?.body.toString(), 'generation 1\n', `${bad.name}: the old config still answers new connections`);
          const n = keptAlive.responses().length;
          await keptAlive.write(get('/'));
          assert.ok(await keptAlive.until(() => keptAlive.responses().length === n + 1, 2000), `${bad.name}: and the kept-alive connection`);
          assert.equal(keptAlive.responses()[n]!.body.toString(), 'generation 1\n');
          // The failed reload bound nothing: the second port stays free.
          assert.equal(await exchange(port2, get('/'), { timeoutMs: 300 }).catch((err: NodeJS.ErrnoException) => err.code), 'ECONNREFUSED');
        }
        assert.equal(proxy.fulcrum.exit, undefined, 'fulcrum is still running');
        // A good config afterwards is taken.
        await proxy.fulcrum.reload(proxyConfig(proxy.port, { server: 'location / { return 200 "generation 2\\n"; }' }));
        assert.equal((await exchange(proxy.port, get('/'))).responses[0]?.body.toString(), 'generation 2\n');
      } finally {
        keptAlive.destroy();
        await proxy.stop();
      }
    });
  });
});
