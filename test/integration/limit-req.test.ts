/**
 * nginx's limit_req in front of a real backend: the leaky bucket refuses
 * what is over `burst` (503, or limit_req_status) and delays the rest unless
 * `nodelay` (`delay=N`: the first N over the rate pass at once); the key's
 * value separates clients and an empty key is not limited; a delayed POST
 * reaches the backend whole; dry run refuses nothing; refusals are logged at
 * limit_req_log_level. (nginx 1.22 answered 200 x4 then 503 x4 for the
 * nodelay sequence below, and delayed the others by the same ~1 s steps at
 * 60r/m.) Bad directives are errors with file and line.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { expectConfigError } from '../support/config-check.js';
import { tempDir } from '../support/tmp.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  backends = await spawnBackends(1);
  [port] = await freePorts(1);
  fulcrum = await startFulcrum({
    config: `
events {}
http {
  access_log off;
  limit_req_zone $arg_client zone=burst:1m rate=2r/s;
  limit_req_zone $arg_client zone=paced:1m rate=10r/s;
  limit_req_zone $arg_client zone=dry:1m rate=1r/m;
  upstream app { server 127.0.0.1:${backends.ports[0]}; }
  server {
    listen 127.0.0.1:${port};
    location /nodelay/ { limit_req zone=burst burst=3 nodelay; proxy_pass http://app/; }
    location /paced/ { limit_req zone=paced burst=3; proxy_pass http://app/; }
    location /two-free/ { limit_req zone=paced burst=5 delay=2; limit_req_status 429; proxy_pass http://app/; }
    location /dry/ { limit_req zone=dry; limit_req_dry_run on; limit_req_log_level warn; proxy_pass http://app/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

async function timed(path: string, opts: { method?: string; body?: string } = {}): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  const res = await request({ port, path, ...opts });
  return { status: res.status, ms: performance.now() - started, body: res.body.toString() };
}

describe('limit_req', () => {
  test('nodelay: the rate plus burst pass at once, the rest get 503 and are logged at error', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await timed('/nodelay/hello?client=a')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 503, 503, 503, 503]);
    // Another key has its own bucket; an empty key is not limited at all.
    assert.equal((await timed('/nodelay/hello?client=b')).status, 200);
    for (let i = 0; i < 6; i++) assert.equal((await timed('/nodelay/hello')).status, 200);
    const refusal = await fulcrum.waitForLog((l) => l.msg === 'limiting requests');
    assert.equal(refusal.level, 'error');
    assert.equal(refusal.zone, 'burst');
  });

  test('without nodelay the burst is paced at the rate (10r/s: 100 ms apart) and what is over it refused', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => timed('/paced/hello?client=c')));
    const ok = results.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
    assert.equal(ok.length, 4, JSON.stringify(results));
    assert.equal(results.filter((r) => r.status === 503).length, 2, JSON.stringify(results));
    assert.ok(ok[0]! < 150, `the first passes at once (${ok[0]} ms)`);
    assert.ok(ok[3]! >= 250 && ok[3]! < 1500, `the fourth waits ~300 ms (${ok[3]} ms)`);
  });

  test('delay=2: two over the rate pass at once, the next wait; limit_req_status 429', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => timed('/two-free/hello?client=d')));
    const ok = results.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
    assert.equal(ok.length, 6, JSON.stringify(results));
    assert.equal(results.filter((r) => r.status === 429).length, 2, JSON.stringify(results));
    assert.ok(ok[2]! < 150, `three at once (${ok.slice(0, 3).join(', ')} ms)`);
    assert.ok(ok[3]! - ok[2]! >= 60, `the fourth waits ~100 ms more (${ok.join(', ')} ms)`);
  });

  test('a delayed POST reaches the backend with its whole body', async () => {
    await timed('/paced/hello?client=e');
    const body = 'x'.repeat(100_000);
    const res = await timed('/paced/echo?client=e', { method: 'POST', body });
    assert.equal(res.status, 200);
    assert.ok(res.ms >= 50, `it was delayed (${res.ms} ms)`);
    const echoed = JSON.parse(res.body) as { bytes: number; sha256: string };
    assert.equal(echoed.bytes, body.length);
    assert.equal(echoed.sha256, createHash('sha256').update(body).digest('hex'));
  });

  test('dry run: nothing is refused, refusals are logged (at limit_req_log_level)', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await timed('/dry/hello?client=f')).status, 200);
    const entry = await fulcrum.waitForLog((l) => l.msg === 'limiting requests' && l.zone === 'dry');
    assert.equal(entry.level, 'warn');
    assert.equal(entry.dryRun, true);
  });
});

describe('limit_req errors', { concurrency: 4 }, () => {
  const dir = tempDir('fulcrum-limit-req-');
  const cases: Array<{ name: string; directive: string; message: RegExp; line?: number }> = [
    { name: 'an undeclared zone', directive: 'limit_req zone=nope;', message: /zero size shared memory zone "nope"/ },
    { name: 'a bad rate', directive: 'limit_req zone=one;', message: /invalid rate "rate=10r\/h"/, line: 2 },
    { name: 'delay with nodelay', directive: 'limit_req zone=ok delay=2 nodelay;', message: /"delay" and "nodelay" cannot be used together/ },
    { name: 'a bad burst', directive: 'limit_req zone=ok burst=x;', message: /invalid burst value "x"/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const zones = c.line === 2 ? 'limit_req_zone $binary_remote_addr zone=one:1m rate=10r/h;' : 'limit_req_zone $binary_remote_addr zone=ok:1m rate=10r/s;';
      const text = `http {\n  ${zones}\n  server {\n    listen 127.0.0.1:1;\n    location / { ${c.directive} return 204; }\n  }\n}\n`;
      return expectConfigError(dir, c.name, text, { line: c.line ?? 5, message: c.message });
    });
  }
});
