/**
 * The file provider: `servers_file FILE` in an upstream lists servers in
 * YAML or JSON; the file is watched and every valid version is applied in
 * every worker without a reload; an invalid version is reported and the
 * last valid servers stay.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { upstreamState } from '../support/admin.js';
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
  backends = await spawnBackends(3);
  [port, adminPort] = await freePorts(2);
  dir = tempDir('fulcrum-servers-file-');
  // The file does not exist yet when fulcrum starts.
  fulcrum = await startFulcrum({
    dir,
    config: `
worker_processes 2;
admin { listen 127.0.0.1:${adminPort}; }
http {
  access_log off;
  upstream app { servers_file backends.yaml; }
  upstream json { servers_file backends.json; }
  server {
    listen 127.0.0.1:${port};
    location /app/ { proxy_pass http://app/; }
    location /json/ { proxy_pass http://json/; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
  await backends?.stop();
});

/** Writes atomically, as a config manager should: a temporary file renamed over the old one. */
function writeAtomically(name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

async function answering(path: string, n = 24): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await request({ port, path });
    assert.equal(r.status, 200);
    seen.add(String(r.headers['x-backend']));
  }
  return [...seen].sort();
}

describe('servers_file (worker_processes 2)', () => {
  test('a missing file leaves the upstream empty (502) and is reported; once written, its servers are used', async () => {
    await fulcrum.waitForLog((e) => e.msg === 'servers file not applied: keeping the last valid servers' && String(e.error).includes('does not exist'), 5000);
    assert.equal((await request({ port, path: '/app/hello' })).status, 502);
    writeAtomically('backends.yaml', `- 127.0.0.1:${backends.ports[0]}\n- { address: "127.0.0.1:${backends.ports[1]}", weight: 2 }\n`);
    await waitUntil(async () => (await upstreamState(adminPort, 'app')).servers.length === 2, { timeoutMs: 4000, description: 'two servers from the file' });
    const servers = (await upstreamState(adminPort, 'app')).servers;
    assert.deepEqual(servers.map((s) => [s.address, s.weight, s.source]), [
      [`127.0.0.1:${backends.ports[0]}`, 1, 'file'],
      [`127.0.0.1:${backends.ports[1]}`, 2, 'file'],
    ]);
    assert.deepEqual(await answering('/app/hello'), ['backend_1', 'backend_2']);
  });

  test('a new version is applied without a reload; an invalid one is reported and the last valid servers stay', async () => {
    writeAtomically('backends.yaml', `servers:\n  - 127.0.0.1:${backends.ports[0]}\n  - 127.0.0.1:${backends.ports[1]}\n  - 127.0.0.1:${backends.ports[2]}\n`);
    await waitUntil(async () => (await upstreamState(adminPort, 'app')).servers.length === 3, { timeoutMs: 4000, description: 'three servers' });
    assert.deepEqual(await answering('/app/hello', 30), ['backend_1', 'backend_2', 'backend_3']);

    const from = fulcrum.logs.length;
    writeAtomically('backends.yaml', `- { address: "127.0.0.1:${backends.ports[0]}", wieght: 3 }\n`);
    const error = await fulcrum.waitForLog((e) => e.msg === 'servers file not applied: keeping the last valid servers', 4000, from);
    assert.match(String(error.error), /backends\.yaml: server 1: unknown key "wieght"/);
    assert.equal((await upstreamState(adminPort, 'app')).servers.length, 3);
    assert.deepEqual(await answering('/app/hello', 30), ['backend_1', 'backend_2', 'backend_3']);
    assert.equal(fulcrum.logs.filter((e) => e.msg === 'reloaded').length, 0);
  });

  test('JSON files too, with backup servers', async () => {
    writeAtomically('backends.json', JSON.stringify([{ address: `127.0.0.1:${backends.ports[2]}` }, { address: `127.0.0.1:${backends.ports[0]}`, backup: true }]));
    await waitUntil(async () => (await upstreamState(adminPort, 'json')).servers.length === 2, { timeoutMs: 4000, description: 'the JSON servers' });
    assert.deepEqual(await answering('/json/hello', 10), ['backend_3'], 'the backup is not used while the primary works');
  });
});
