/**
 * Binary upgrade without downtime (issue 6; nginx's USR2, HAProxy's -x):
 * SIGUSR2 makes the running fulcrum start the program now installed at its
 * path and hand it the listening sockets (and the admin socket); once the
 * new process serves, the old one finishes what is in flight and exits.
 * Under load, with one process and with workers: no failed request, a slow
 * request started on the old process completes, the new process runs the new
 * files, and the admin API answers from the new process. A new process that
 * cannot start leaves the old one serving.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { admin } from '../support/admin.js';
import { FulcrumProcess } from '../support/fulcrum.js';
import { keepAliveAgent, request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { sleep, waitUntil } from '../support/wait.js';

const FULCRUM_BIN = fileURLToPath(new URL('../../../bin/fulcrum.js', import.meta.url));
let backends: TestBackends;
const started: number[] = [];
/** Each launcher runs in its own process group: the old process, the new one it starts and their workers. */
const processGroups: number[] = [];

before(async () => {
  backends = await spawnBackends(2);
});

after(async () => {
  // Whatever a failed handover left behind (a new process whose pid was never
  // learnt) must not outlive the test: it holds this file's stdout and stderr.
  for (const group of processGroups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await backends?.stop();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts fulcrum through a launcher in a temp dir that records, per process,
 * the "installed version" (version.txt) it started with: rewriting
 * version.txt stands for installing a new fulcrum at the same path.
 */
async function startThroughLauncher(config: string): Promise<{ fulcrum: FulcrumProcess; dir: string; versionOf(pid: number): string | undefined }> {
  const dir = tempDir('fulcrum-upgrade-');
  const launcher = join(dir, 'fulcrum-launcher.mjs');
  writeFileSync(join(dir, 'version.txt'), 'v1\n');
  writeFileSync(
    launcher,
    `import { readFileSync, writeFileSync } from 'node:fs';\n` +
      `const version = readFileSync(new URL('./version.txt', import.meta.url), 'utf8').trim();\n` +
      `writeFileSync(new URL('./started-' + process.pid, import.meta.url), version);\n` +
      `await import(${JSON.stringify(new URL(`file://${FULCRUM_BIN}`).href)});\n`,
  );
  const configPath = join(dir, 'fulcrum.conf');
  writeFileSync(configPath, config);
  const child = spawn(process.execPath, [launcher, 'start', '--config', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  processGroups.push(child.pid!);
  const fulcrum = new FulcrumProcess(child, configPath, dir);
  started.push(child.pid!);
  await fulcrum.waitForLog((e) => e.msg === 'ready', 15_000);
  return {
    fulcrum,
    dir,
    versionOf: (pid) => {
      const file = join(dir, `started-${pid}`);
      return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    },
  };
}

function configFor(workers: number, port: number, adminPort: number): string {
  return `
worker_processes ${workers};
worker_shutdown_timeout 10s;
admin { listen 127.0.0.1:${adminPort}; token upgrade; }
http {
  access_log off;
  upstream app { server 127.0.0.1:${backends.ports[0]}; server 127.0.0.1:${backends.ports[1]}; }
  server {
    listen 127.0.0.1:${port};
    add_header X-Pid $pid always;
    location / { proxy_pass http://app; proxy_read_timeout 30s; }
  }
}
`;
}

describe('binary upgrade (SIGUSR2)', () => {
  for (const workers of [1, 2]) {
    test(`worker_processes ${workers}: the new program takes the sockets over under load, no request fails`, async (t) => {
      const [port, adminPort] = await freePorts(2);
      const { fulcrum, dir, versionOf } = await startThroughLauncher(configFor(workers, port, adminPort));
      const oldPid = fulcrum.pid;
      let newPid = 0;
      let running = true;
      try {
        const failures: string[] = [];
        const servedBy = new Map<string, number>();
        const agent = keepAliveAgent({ maxSockets: 2 });
        const loop = async (useAgent: boolean): Promise<void> => {
          while (running) {
            try {
              const r = await request({ port, path: '/hello', agent: useAgent ? agent : false, timeoutMs: 10_000 });
              if (r.status !== 200) throw new Error(`status ${r.status}`);
              const pid = String(r.headers['x-pid']);
              servedBy.set(pid, (servedBy.get(pid) ?? 0) + 1);
            } catch (err) {
              failures.push((err as Error).message);
            }
          }
        };
        const clients = [loop(true), loop(true), loop(false), loop(false)];
        await sleep(300);
        const oldServers = new Set(servedBy.keys());
        const slow = request({ port, path: '/slow?ms=1500', timeoutMs: 10_000 });
        await sleep(100);
        writeFileSync(join(dir, 'version.txt'), 'v2\n');
        const from = fulcrum.logs.length;
        process.kill(oldPid, 'SIGUSR2');
        const handover = await fulcrum.waitForLog((e) => e.msg === 'binary upgrade: the new process serves; this one stops', 20_000, from);
        newPid = handover.newPid as number;
        started.push(newPid);
        const slowResult = await slow;
        assert.equal(slowResult.status, 200, 'the slow request in flight on the old process completed');
        await waitUntil(() => !alive(oldPid), { timeoutMs: 15_000, description: 'the old process exited' });
        const afterExit = servedBy.size;
        await sleep(400);
        running = false;
        await Promise.all(clients);
        agent.destroy();

        assert.deepEqual(failures, [], `${failures.length} failed requests`);
        assert.equal(versionOf(oldPid), 'v1');
        assert.equal(versionOf(newPid), 'v2', 'the new process runs the files installed at the same path');
        const newServers = [...servedBy.keys()].filter((pid) => !oldServers.has(pid));
        assert.ok(newServers.length >= 1, 'new processes served requests');
        assert.ok(afterExit >= oldServers.size, 'old processes served until they stopped');
        const info = await admin(adminPort, 'GET', '/api');
        assert.equal(info.body.pid, newPid, 'the admin listener moved to the new process');
        assert.equal(info.body.workers, workers);
        const oldStopped = fulcrum.logs.slice(from).some((e) => e.msg === 'stopped' && e.pid === oldPid);
        assert.ok(oldStopped, 'the old process logged "stopped"');
        t.diagnostic(`old ${oldPid} -> new ${newPid}; requests by process: ${JSON.stringify(Object.fromEntries(servedBy))}`);
      } catch (err) {
        // What every process logged (the old one, its workers, the new one) tells which of them dropped what.
        (err as Error).message += `\nexit of the old process: ${JSON.stringify(fulcrum.exit)}\nlogs:\n${fulcrum.stderrText()}`;
        throw err;
      } finally {
        running = false;
        if (newPid !== 0 && alive(newPid)) process.kill(newPid, 'SIGTERM');
        await fulcrum.stop('SIGTERM', 15_000).catch(() => undefined);
      }
    });
  }

  test('a new process that cannot start leaves the old one serving', async () => {
    const [port, adminPort] = await freePorts(2);
    const { fulcrum } = await startThroughLauncher(configFor(1, port, adminPort));
    try {
      writeFileSync(fulcrum.configPath, 'http { this is not a config; }\n');
      const from = fulcrum.logs.length;
      process.kill(fulcrum.pid, 'SIGUSR2');
      await fulcrum.waitForLog((e) => e.msg === 'binary upgrade failed: this process keeps serving', 20_000, from);
      const r = await request({ port, path: '/hello' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-pid'], String(fulcrum.pid));
    } finally {
      await fulcrum.stop();
    }
  });
});
