/**
 * nginx's control flags, as the seed's compose file uses them
 * (`nginx -g "daemon off;"` to run, `nginx -s reload` every 6 hours):
 *
 * - `fulcrum -s reload|reopen|quit|stop` signals the fulcrum whose pid is in
 *   the configuration's `pid` file (or the default one); a missing or stale
 *   pid file is an error that signals nothing;
 * - `-g "directives;"` adds main-context directives, and they stay in force
 *   across reloads and in every worker; `daemon off` (what fulcrum does
 *   anyway) is accepted without a warning;
 * - `-s quit` (SIGQUIT) is a graceful stop: a request in flight completes;
 * - `-T` prints the configuration files read, `-q` silences a passing test.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { runFulcrum, startFulcrum } from '../support/fulcrum.js';
import { request } from '../support/http-client.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

let backends: TestBackends;

before(async () => {
  backends = await spawnBackends(2);
});

after(async () => {
  await backends?.stop();
});

function config(port: number, body: string, opts: { pid?: string; accessLog?: string } = {}): string {
  const [a, b] = backends.ports.map((p) => `127.0.0.1:${p}`);
  return `
events { worker_connections 1024; }
${opts.pid === undefined ? '' : `pid ${opts.pid};`}
http {
  ${opts.accessLog === undefined ? '' : `access_log ${opts.accessLog};`}
  upstream app { server ${a}; server ${b}; }
  server {
    listen 127.0.0.1:${port};
    location /api/ { proxy_pass http://app; }
    location = /version { return 200 "${body}\\n"; }
  }
}
`;
}

describe('fulcrum -s', { concurrency: 2 }, () => {
  test('reload, reopen and quit reach the process named by the pid file; quit lets a request finish', async () => {
    const [port] = await freePorts(1);
    const dir = tempDir('fulcrum-signal-');
    const pidFile = join(dir, 'fulcrum.pid');
    const accessLog = join(dir, 'access.log');
    const fulcrum = await startFulcrum({ dir, config: config(port!, 'one', { pid: pidFile, accessLog }), args: ['-g', 'daemon off;'] });
    try {
      assert.equal(readFileSync(pidFile, 'utf8').trim(), String(fulcrum.pid));
      assert.ok(!fulcrum.logs.some((l) => String(l.msg ?? '').includes('daemon')), 'daemon off is what fulcrum does: no warning');

      assert.equal((await request({ port: port!, path: '/version' })).body.toString(), 'one\n');
      writeFileSync(fulcrum.configPath, config(port!, 'two', { pid: pidFile, accessLog }));
      const reloaded = await runFulcrum(['-s', 'reload', '-c', fulcrum.configPath]);
      assert.equal(reloaded.code, 0, reloaded.stderr);
      await fulcrum.waitForLog((l) => l.msg === 'reloaded');
      assert.equal((await request({ port: port!, path: '/version' })).body.toString(), 'two\n');
      await waitUntil(() => existsSync(accessLog) && readFileSync(accessLog, 'utf8').includes('/version'));

      // reopen: after a rotation (rename), the next line goes to a new file at the configured path.
      renameSync(accessLog, `${accessLog}.1`);
      const reopened = await runFulcrum(['-s', 'reopen', '-c', fulcrum.configPath]);
      assert.equal(reopened.code, 0, reopened.stderr);
      await waitUntil(async () => {
        await request({ port: port!, path: '/version?after-reopen' });
        return existsSync(accessLog) && readFileSync(accessLog, 'utf8').includes('after-reopen');
      });

      // quit: graceful, a slow request in flight completes.
      const slow = request({ port: port!, path: '/api/slow?ms=800' });
      await new Promise((r) => setTimeout(r, 200));
      const quit = await runFulcrum(['-s', 'quit', '-c', fulcrum.configPath]);
      assert.equal(quit.code, 0, quit.stderr);
      const res = await slow;
      assert.equal(res.status, 200);
      assert.match(res.body.toString(), /^slow 800 ms/);
      assert.equal(await fulcrum.waitForExit(), 0);
      assert.ok(!existsSync(pidFile), 'the pid file is removed at exit');
    } finally {
      await fulcrum.kill();
    }
  });

  test('-g directives hold across reloads and in every worker', async () => {
    const [port] = await freePorts(1);
    const dir = tempDir('fulcrum-signal-');
    const pidFile = join(dir, 'from-g.pid');
    const globals = `worker_processes 2; pid ${pidFile};`;
    const fulcrum = await startFulcrum({ dir, config: config(port!, 'one'), args: ['-g', globals] });
    try {
      assert.equal(readFileSync(pidFile, 'utf8').trim(), String(fulcrum.pid), 'the supervisor wrote the pid file -g named');
      writeFileSync(fulcrum.configPath, config(port!, 'two'));
      const r = await runFulcrum(['-s', 'reload', '-c', fulcrum.configPath, '-g', globals]);
      assert.equal(r.code, 0, r.stderr);
      await fulcrum.waitForLog((l) => l.msg === 'reloaded');
      assert.equal((await request({ port: port!, path: '/version' })).body.toString(), 'two\n');
      // Without -g the reload would have moved the pid file to the default place.
      assert.equal(readFileSync(pidFile, 'utf8').trim(), String(fulcrum.pid));
      assert.ok(fulcrum.logs.some((l) => l.msg === 'ready' && l.workers === 2), 'worker_processes 2 from -g: a supervisor and two workers');
      const stop = await runFulcrum(['-s', 'stop', '-c', fulcrum.configPath, '-g', globals]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(await fulcrum.waitForExit(), 0);
    } finally {
      await fulcrum.kill();
    }
  });

  test('no pid file, a stale one, an unknown signal: an error, and nothing is signalled', async () => {
    const dir = tempDir('fulcrum-signal-');
    const pidFile = join(dir, 'stale.pid');
    const conf = join(dir, 'fulcrum.conf');
    writeFileSync(conf, `pid ${pidFile};\nhttp { server { listen 127.0.0.1:1; return 204; } }\n`);

    const missing = await runFulcrum(['-s', 'reload', '-c', conf]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`open\\(\\) "${pidFile}" failed`));

    // A pid file left behind, its number now another program's.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(pidFile, `${other.pid}\n`);
      const stale = await runFulcrum(['-s', 'stop', '-c', conf]);
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /is not fulcrum/);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(other.exitCode, null, 'the other program was not signalled');
      assert.equal(other.signalCode, null);
    } finally {
      other.kill('SIGKILL');
    }

    writeFileSync(pidFile, '999999999\n');
    const gone = await runFulcrum(['-s', 'reload', '-c', conf]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No such process|invalid PID/);

    const unknown = await runFulcrum(['-s', 'restart', '-c', conf]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /invalid option: "-s restart"/);
  });

  test('a configuration with errors: -s reports them and signals nothing', async () => {
    const dir = tempDir('fulcrum-signal-');
    const conf = join(dir, 'fulcrum.conf');
    writeFileSync(conf, `pid ${join(dir, 'x.pid')};\nhttp { server { listen 127.0.0.1:1; proxy_bufering off; } }\n`);
    const r = await runFulcrum(['-s', 'reload', '-c', conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${conf}:2:\\d+: unknown directive "proxy_bufering"`));
  });
});

describe('fulcrum -g, -T, -q', { concurrency: 2 }, () => {
  test('a bad -g directive is reported as coming from the command line', async () => {
    const dir = tempDir('fulcrum-g-');
    const conf = join(dir, 'fulcrum.conf');
    writeFileSync(conf, 'http { server { listen 127.0.0.1:1; return 204; } }\n');
    const r = await runFulcrum(['-t', '-c', conf, '-g', 'daemon off; worker_procesess 2;']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\(command line -g\):1:\d+: unknown directive "worker_procesess"/);
    const yaml = join(dir, 'fulcrum.yaml');
    writeFileSync(yaml, 'http: {}\n');
    const y = await runFulcrum(['-t', '-c', yaml, '-g', 'daemon off;']);
    assert.equal(y.code, 1);
    assert.match(y.stderr, /nginx-syntax configurations only/);
  });

  test('-T prints every file read; -q prints nothing for a passing test', async () => {
    const dir = tempDir('fulcrum-g-');
    const conf = join(dir, 'fulcrum.conf');
    const inc = join(dir, 'upstreams.conf');
    writeFileSync(inc, 'upstream app { server 127.0.0.1:9; }\n');
    writeFileSync(conf, `http {\n  include ${inc};\n  server { listen 127.0.0.1:1; location / { proxy_pass http://app; } }\n}\n`);
    const t = await runFulcrum(['-T', '-c', conf]);
    assert.equal(t.code, 0, t.stderr);
    assert.ok(t.stdout.includes(`# configuration file ${conf}:\n${readFileSync(conf, 'utf8')}`), t.stdout);
    assert.ok(t.stdout.includes(`# configuration file ${inc}:\nupstream app`), t.stdout);
    const q = await runFulcrum(['-t', '-q', '-c', conf]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stderr, '');
  });
});
