import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { RestartBackoff, startReplicas, type ReplicaEvent } from '../../src/demo/replicas.js';
import { spawnBackends } from '../support/backends.js';
import { request } from '../support/http-client.js';
import { freePort } from '../support/ports.js';
import { waitUntil } from '../support/wait.js';

/** Running (not a zombie: orphans are reaped by PID 1, which in containers may take a while). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) STATE ..."
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: signal 0 succeeding is all we know
  }
}

/** Starts replicas in a separate parent process, which prints their pids; the test then kills that parent. */
async function startParentOfReplicas(): Promise<{ parent: ReturnType<typeof spawn>; childPids: number[] }> {
  const replicasModule = new URL('../../src/demo/replicas.js', import.meta.url).href;
  const script = `import { startReplicas } from ${JSON.stringify(replicasModule)};
    const r = await startReplicas({ count: 2 });
    console.log(JSON.stringify([r.pid(0), r.pid(1)]));`;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: parent.stdout! }), 'line')) as [string];
  return { parent, childPids: JSON.parse(line) as number[] };
}

async function hello(port: number): Promise<string> {
  return (await request({ port, path: '/api/hello', timeoutMs: 2000 })).body.toString();
}

describe('restart backoff', () => {
  test('doubles from 100 ms up to 5 s, and starts over after a 10 s run', () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 8 }, () => backoff.next(50));
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert.equal(backoff.next(10_000), 100);
    assert.equal(backoff.next(9_999), 200);
  });
});

describe('demo replicas', () => {
  test('three replicas answer with distinct names; a crashed one is restarted on its port', async () => {
    const events: ReplicaEvent[] = [];
    const replicas = await startReplicas({ count: 3, onEvent: (e) => events.push(e) });
    const pids = [0, 1, 2].map((i) => replicas.pid(i)!);
    try {
      assert.deepEqual(replicas.names, ['backend_1', 'backend_2', 'backend_3']);
      assert.equal(new Set(replicas.ports).size, 3);
      const answers = await Promise.all(replicas.ports.map(hello));
      assert.deepEqual(answers, ['Hello from backend_1\n', 'Hello from backend_2\n', 'Hello from backend_3\n']);

      const crashedAt = Date.now();
      await assert.rejects(request({ port: replicas.ports[1]!, path: '/api/crash' }), /socket hang up|ECONNRESET/);
      const answer = await waitUntil(() => hello(replicas.ports[1]!), { timeoutMs: 3000, description: 'backend_2 to answer again' });
      const downMs = Date.now() - crashedAt;
      assert.equal(answer, 'Hello from backend_2\n');
      assert.ok(downMs < 1500, `backend_2 was down ${downMs} ms`);
      assert.notEqual(replicas.pid(1), pids[1], 'a new process');
      assert.equal(isAlive(pids[1]!), false);

      const forBackend2 = events.filter((e) => e.name === 'backend_2').map((e) => [e.type, e.code, e.delayMs]);
      assert.deepEqual(forBackend2, [['started', undefined, undefined], ['exited', 1, undefined], ['restarting', undefined, 100], ['started', undefined, undefined]]);
    } finally {
      await replicas.stop();
    }
    const allPids = [...pids, ...events.map((e) => e.pid!)];
    assert.deepEqual(allPids.filter(isAlive), [], 'no replica outlives stop()');
    const eventsAfterStop = events.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(events.length, eventsAfterStop, 'nothing restarts after stop()');
  });

  test('with a base port, a killed replica comes back on the same fixed port', async () => {
    const basePort = await freePort();
    const replicas = await startReplicas({ count: 1, basePort, namePrefix: 'api_' });
    try {
      assert.deepEqual(replicas.ports, [basePort]);
      const firstPid = replicas.pid(0);
      await replicas.kill(0); // SIGKILL, like `docker kill`
      const answer = await waitUntil(() => hello(basePort), { timeoutMs: 3000, description: 'api_1 to answer again' });
      assert.equal(answer, 'Hello from api_1\n');
      assert.notEqual(replicas.pid(0), firstPid);
    } finally {
      await replicas.stop();
    }
  });

  test('test backends stay down when killed until restart(i)', async () => {
    const backends = await spawnBackends(2);
    try {
      await backends.kill(0);
      await assert.rejects(hello(backends.ports[0]!), /ECONNREFUSED/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(backends.pid(0), undefined, 'not restarted by itself');
      assert.equal(await hello(backends.ports[1]!), 'Hello from backend_2\n');
      await backends.restart(0);
      assert.equal(await hello(backends.ports[0]!), 'Hello from backend_1\n');
    } finally {
      await backends.stop();
    }
  });

  test('a replica whose port is taken makes startReplicas fail cleanly', async () => {
    const holder = await startReplicas({ count: 1 });
    try {
      await assert.rejects(
        startReplicas({ count: 1, basePort: holder.ports[0]!, autoRestart: false }),
        /exited before listening \(code 98/,
      );
    } finally {
      await holder.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`replicas die with their parent (${signal})`, async () => {
      const { parent, childPids } = await startParentOfReplicas();
      try {
        assert.equal(childPids.filter(isAlive).length, 2);
        parent.kill(signal);
        await waitUntil(() => childPids.every((pid) => !isAlive(pid)), { timeoutMs: 5000, description: 'the replicas to exit' });
      } finally {
        parent.kill('SIGKILL');
        for (const pid of childPids.filter(isAlive)) process.kill(pid, 'SIGKILL');
      }
    });
  }
});
