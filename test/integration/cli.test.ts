/**
 * The command line: `fulcrum check` validates like `nginx -t` (the seed's
 * nginx.conf passes; every error is printed as FILE:LINE:COL: message naming
 * the directive, exit status 1), `fulcrum start` refuses an invalid config the
 * same way, and `--help` works through `node bin/fulcrum.js` and `npx fulcrum`.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFulcrum } from '../support/fulcrum.js';
import { replaceOnce, SEED_NGINX_CONF } from '../support/seed.js';
import { tempDir } from '../support/tmp.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const seedText = readFileSync(SEED_NGINX_CONF, 'utf8');

/** Writes the seed config with one edit (from -> to) and returns its path. */
function seedWith(dir: string, name: string, edits: Array<[string, string]>): string {
  let text = seedText;
  for (const [from, to] of edits) text = replaceOnce(text, from, to);
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** `FILE:LINE:COL` of the first line of `file` that contains `needle`, the column being where `needle` starts. */
function locate(file: string, needle: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((line) => line.includes(needle));
  assert.ok(index >= 0, `${needle} in ${file}`);
  return `${file}:${index + 1}:${lines[index]!.indexOf(needle) + 1}`;
}

/** stderr lines that are diagnostics (FILE:LINE:COL: message), warnings excluded. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^\S+:\d+:\d+: /.test(line));
}

describe('fulcrum check', { concurrency: 4 }, () => {
  test('the seed\'s nginx.conf, unchanged, passes (exit 0)', async () => {
    const r = await runFulcrum(['check', '--config', SEED_NGINX_CONF]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
    assert.deepEqual(errorLines(r.stderr), []);
  });

  test('nginx\'s own flags work too: -t -c FILE', async () => {
    const r = await runFulcrum(['-t', '-c', SEED_NGINX_CONF]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
  });

  const dir = tempDir('fulcrum-cli-');
  const cases: Array<{ name: string; edits: Array<[string, string]>; at: string; mentions: RegExp[]; todo?: string }> = [
    {
      name: 'an unknown directive (a typo)',
      edits: [['proxy_buffering off;', 'proxy_bufering off;']],
      at: 'proxy_bufering',
      mentions: [/unknown directive/, /"proxy_bufering"/],
    },
    {
      name: 'a bad duration',
      edits: [['proxy_read_timeout 300;', 'proxy_read_timeout 3OO;']],
      at: 'proxy_read_timeout',
      mentions: [/proxy_read_timeout/, /3OO/],
    },
    {
      name: 'a bad on/off flag',
      edits: [['proxy_request_buffering off;', 'proxy_request_buffering maybe;']],
      at: 'proxy_request_buffering',
      mentions: [/proxy_request_buffering/, /maybe/],
    },
    {
      name: 'a bad server parameter value',
      edits: [['server ubuntu_backend_2:8080 max_fails=3', 'server ubuntu_backend_2:8080 max_fails=three']],
      at: 'server ubuntu_backend_2',
      mentions: [/"server"/, /three/],
    },
    {
      name: 'an unknown server parameter',
      edits: [['server ubuntu_backend_3:8080 max_fails=3', 'server ubuntu_backend_3:8080 max_fail=3']],
      at: 'server ubuntu_backend_3',
      mentions: [/max_fail=3/],
    },
    {
      name: 'an unknown TLS protocol',
      edits: [['ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1.2 TLSv1.4;']],
      at: 'ssl_protocols',
      mentions: [/ssl_protocols/, /TLSv1\.4/],
    },
    {
      name: 'a directive in the wrong block',
      edits: [['chunked_transfer_encoding on;', 'worker_connections 10;']],
      at: 'worker_connections 10;',
      mentions: [/worker_connections/, /not allowed here/],
    },
    {
      name: 'a missing semicolon',
      edits: [['proxy_buffering off;', 'proxy_buffering off']],
      at: 'proxy_buffering off',
      mentions: [/proxy_buffering/],
    },
    {
      name: 'an unknown variable',
      edits: [['return 301 https://$host$request_uri;', 'return 301 https://$hots$request_uri;']],
      at: 'return 301',
      mentions: [/hots/],
    },
    {
      name: 'an invalid return code',
      edits: [['return 301 https://$host$request_uri;', 'return 1000 https://$host$request_uri;']],
      at: 'return 1000',
      mentions: [/return code/, /1000/],
    },
    {
      name: 'a listen port out of range',
      edits: [['listen 80;', 'listen 99999;']],
      at: 'listen 99999',
      mentions: [/listen/, /99999/],
    },
    {
      name: 'a duplicate location',
      edits: [['proxy_set_header X-Forwarded-Proto $scheme;\n        }', 'proxy_set_header X-Forwarded-Proto $scheme;\n        }\n        location /api { }']],
      at: 'location /api { }',
      mentions: [/duplicate location/, /\/api/],
    },
    {
      name: 'an unknown upstream (proxy_pass to a misspelt upstream name)',
      edits: [['proxy_pass http://backend_servers;', 'proxy_pass http://backend_serverz;']],
      at: 'proxy_pass',
      mentions: [/backend_serverz/],
    },
  ];
  for (const c of cases) {
    test(`${c.name}: exit 1 and FILE:LINE:COL: message`, { todo: c.todo }, async () => {
      const file = seedWith(dir, `${c.name.replace(/\W+/g, '-')}.conf`, c.edits);
      const r = await runFulcrum(['check', '--config', file]);
      assert.equal(r.code, 1, `exit status\n${r.stderr}`);
      const errors = errorLines(r.stderr);
      assert.equal(errors.length, 1, `one error: ${r.stderr}`);
      assert.ok(errors[0]!.startsWith(`${locate(file, c.at)}: `), `${errors[0]} points at ${locate(file, c.at)}`);
      for (const m of c.mentions) assert.match(errors[0]!, m);
      assert.match(r.stderr, /test failed/);
    });
  }

  test('an unclosed block: the error is at the end of the file', async () => {
    const file = join(dir, 'unclosed.conf');
    const text = seedText.replace(/}\s*$/, '');
    writeFileSync(file, text);
    const r = await runFulcrum(['check', '--config', file]);
    assert.equal(r.code, 1);
    const errors = errorLines(r.stderr);
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, new RegExp(`^${escape(file)}:\\d+:\\d+: .*end of file`));
  });

  test('several errors: every one is reported, in order', async () => {
    const file = seedWith(dir, 'several.conf', [
      ['proxy_read_timeout 300;', 'proxy_read_timeout 3OO;'],
      ['proxy_buffering off;', 'proxy_bufering off;'],
      ['ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1.2 TLSv1.4;'],
    ]);
    const r = await runFulcrum(['check', '--config', file]);
    assert.equal(r.code, 1);
    const errors = errorLines(r.stderr);
    const at = errors.map((e) => e.split(': ')[0]);
    assert.deepEqual(at, [locate(file, 'ssl_protocols'), locate(file, 'proxy_read_timeout'), locate(file, 'proxy_bufering')], r.stderr);
  });

  test('an error in an included file names that file and its line', async () => {
    const sub = join(dir, 'conf.d');
    mkdirSync(sub, { recursive: true });
    const included = join(sub, 'proxy.conf');
    writeFileSync(included, '# proxy settings\nproxy_buffering off;\nproxy_bufering off;\n');
    const file = seedWith(dir, 'with-include.conf', [['proxy_buffering off;', `include ${included};`]]);
    const r = await runFulcrum(['check', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(errorLines(r.stderr).map((e) => e.split(': ')[0]), [`${included}:3:1`], r.stderr);
  });

  test('a config file that does not exist: exit 1 with the path', async () => {
    const missing = join(dir, 'nope.conf');
    const r = await runFulcrum(['check', '--config', missing]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(escape(missing)));
  });
});

describe('fulcrum start', () => {
  test('an invalid config: not started, exit 1, FILE:LINE:COL on stderr', async () => {
    const dir = tempDir('fulcrum-cli-start-');
    const file = seedWith(dir, 'bad.conf', [['proxy_buffering off;', 'proxy_bufering off;']]);
    const r = await runFulcrum(['start', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(errorLines(r.stderr).some((e) => e.startsWith(`${locate(file, 'proxy_bufering')}: `)), r.stderr);
  });
});

describe('fulcrum --help', () => {
  test('node bin/fulcrum.js --help: usage on stdout, exit 0', async () => {
    const r = await runFulcrum(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const m of [/Usage/, /fulcrum start --config FILE/, /fulcrum check --config FILE/, /fulcrum demo/]) assert.match(r.stdout, m);
  });

  test('an unknown command: exit status 2 and the usage', async () => {
    const r = await runFulcrum(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.match(r.stderr, /Usage/);
  });

  test('npx fulcrum --help from the repository root (the package bin), without the network', async (t) => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string; missing: boolean }>((resolve) => {
      // A private npm cache: npx writes an entry there, and concurrent runs sharing ~/.npm can corrupt each other's.
      const env = { ...process.env, npm_config_cache: tempDir('fulcrum-npx-cache-') };
      execFile('npx', ['--offline', '--no', '--', 'fulcrum', '--help'], { cwd: REPO_ROOT, timeout: 30_000, env }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr, missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' });
      });
    });
    if (r.missing) return t.skip('npx is not installed');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^fulcrum \d+\.\d+\.\d+/);
    assert.match(r.stdout, /fulcrum check --config FILE/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
