/**
 * Logs (issue 6): the event log is structured JSON (pino), one object per
 * line with level, time, pid and a stable message; every request gets an ID
 * (`X-Request-ID`, kept when the client sent a valid one), passed upstream
 * and written to the access log; IDs are unique across worker processes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, headerValues, type TestBackends } from '../support/backends.js';
import { admin } from '../support/admin.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

let backends: TestBackends;
let fulcrum: FulcrumProcess;
let port: number;
let adminPort: number;
let dir: string;

before(async () => {
  backends = await spawnBackends(2);
  [port, adminPort] = await freePorts(2);
  dir = tempDir('fulcrum-logs-');
  fulcrum = await startFulcrum({
    dir,
    config: `
worker_processes 2;
admin { listen 127.0.0.1:${adminPort}; token logs; }
http {
  log_format ids '$request_id $status $upstream_addr';
  access_log ${join(dir, 'access.json')} json;
  access_log ${join(dir, 'ids.log')} ids;
  upstream app { server 127.0.0.1:${backends.ports[0]}; server 127.0.0.1:${backends.ports[1]}; }
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://app; } }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

interface Whoami {
  headers: [string, string][];
}

function accessLines(): Record<string, string | number>[] {
  return readFileSync(join(dir, 'access.json'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, string | number>);
}

describe('request IDs and structured logs (worker_processes 2)', () => {
  test('a valid client X-Request-ID is kept, passed upstream and logged; an invalid one is replaced', async () => {
    const kept = await request({ port, path: '/whoami', headers: { 'x-request-id': 'trace-42.abc:1' } });
    assert.deepEqual(headerValues((JSON.parse(kept.body.toString()) as Whoami).headers, 'x-request-id'), ['trace-42.abc:1']);
    const replaced = await request({ port, path: '/whoami', headers: { 'x-request-id': 'not valid; has spaces' } });
    const made = headerValues((JSON.parse(replaced.body.toString()) as Whoami).headers, 'x-request-id');
    assert.equal(made.length, 1, 'exactly one X-Request-ID upstream');
    assert.match(made[0]!, /^[0-9a-f]{20}$/);
    const lines = await waitUntil(() => {
      const all = accessLines();
      return all.some((l) => l.request_id === made[0]) ? all : undefined;
    }, { timeoutMs: 3000, description: 'the access log lines' });
    const first = lines.find((l) => l.request_id === 'trace-42.abc:1');
    assert.ok(first, 'the kept ID is in the access log');
    assert.equal(first.uri, '/whoami');
    assert.equal(first.status, 200);
    assert.match(String(first.upstream_addr), /^127\.0\.0\.1:\d+$/);
  });

  test('made IDs are unique across requests and workers, and the same in every log', async () => {
    for (let i = 0; i < 60; i++) assert.equal((await request({ port, path: '/hello' })).status, 200);
    const lines = await waitUntil(() => {
      const all = readFileSync(join(dir, 'ids.log'), 'utf8').split('\n').filter((l) => l !== '');
      return all.length >= 62 ? all : undefined;
    }, { timeoutMs: 3000, description: '62 lines in ids.log' });
    const ids = lines.map((l) => l.split(' ')[0]!);
    assert.equal(new Set(ids).size, ids.length, 'no ID repeats');
    const prefixes = new Set(ids.filter((id) => /^[0-9a-f]{20}$/.test(id)).map((id) => id.slice(0, 12)));
    assert.equal(prefixes.size, 2, 'each worker has its own ID prefix (both served)');
    const jsonIds = new Set(accessLines().map((l) => l.request_id));
    for (const id of ids) assert.ok(jsonIds.has(id), `${id} is in both logs`);
  });

  test('the event log is one JSON object per line with level, time, pid and a stable message', async () => {
    await fulcrum.reload();
    assert.equal((await admin(adminPort, 'POST', `/api/upstreams/app/servers/127.0.0.1:${backends.ports[1]}/drain`, { token: 'logs' })).status, 200);
    await fulcrum.waitForLog((e) => e.msg === 'upstream changed by the admin API', 3000);
    assert.ok(fulcrum.logs.length > 5);
    for (const e of fulcrum.logs) {
      assert.equal(e.text, undefined, `not JSON: ${e.text}`);
      assert.ok(['debug', 'info', 'warn', 'error', 'fatal'].includes(e.level!), `level ${e.level}`);
      assert.equal(typeof e.time, 'number');
      assert.equal(typeof e.pid, 'number');
      assert.equal(typeof e.msg, 'string');
    }
    const messages = new Set(fulcrum.logs.map((e) => e.msg));
    for (const m of ['worker ready', 'admin listener ready', 'ready', 'worker reloaded', 'reloaded', 'upstream changed by the admin API']) assert.ok(messages.has(m), m);
    const change = fulcrum.logs.find((e) => e.msg === 'upstream changed by the admin API')!;
    assert.deepEqual([change.op, change.upstream, change.server], ['drain', 'app', `127.0.0.1:${backends.ports[1]}`]);
  });
});
