import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError, formatDiagnostic } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSinks } from '../../src/log/access-log.js';
import { compile } from '../../src/runtime/compile.js';
import { ServerRegistry } from '../../src/upstream/group.js';
import { SEED_CONFIG } from '../support/seed-files.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-config-test-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Loads and compiles; returns the formatted diagnostics ([] when valid). */
function problems(name: string, text: string): string[] {
  const file = write(name, text);
  try {
    const loaded = loadConfig(file);
    compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 1, dryRun: true });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.diagnostics.map((d) => formatDiagnostic(d).replace(dir + '/', ''));
  }
}

const seedLike = (inner: string): string => `events { worker_connections 64; }\nhttp {\n${inner}\n}\n`;

test('the seed nginx.conf loads and compiles', () => {
  const loaded = loadConfig(SEED_CONFIG);
  const { table } = compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 1, dryRun: true });
  assert.deepEqual(table.listeners.map((l) => `${l.key}${l.ssl ? ' ssl' : ''}`), ['0.0.0.0:80', '0.0.0.0:443 ssl']);
  const group = table.upstreams.get('backend_servers')!;
  assert.deepEqual(group.servers.map((s) => s.address), ['ubuntu_backend_1:8080', 'ubuntu_backend_2:8080', 'ubuntu_backend_3:8080']);
  assert.deepEqual(loaded.config.http.upstreams[0]!.servers.map((s) => [s.max_fails, s.fail_timeout]), [
    [3, 30_000],
    [3, 30_000],
    [3, 30_000],
  ]);
});

test('an unknown directive is an error naming it, its file and line', () => {
  assert.deepEqual(problems('unknown.conf', seedLike('  server {\n    listen 8080;\n    proxy_magic on;\n  }')), ['unknown.conf:5:5: unknown directive "proxy_magic"']);
});

test('a directive in the wrong context, with a bad value, or repeated is reported with its line', () => {
  const text = seedLike(['  proxy_pass http://x;', '  server {', '    listen 80;', '    proxy_read_timeout forever;', '    proxy_read_timeout 10s;', '    proxy_read_timeout 20s;', '  }'].join('\n'));
  assert.deepEqual(problems('many.conf', text), [
    'many.conf:3:3: "proxy_pass" directive is not allowed here (in http context)',
    'many.conf:6:5: "proxy_read_timeout" directive invalid value "forever"',
    'many.conf:8:5: "proxy_read_timeout" directive is duplicate',
  ]);
});

test('compile errors point at the directive: unknown variable, bad regex, proxy_pass URI in a regex location', () => {
  const text = seedLike(
    [
      '  upstream app { server 127.0.0.1:9000; }',
      '  server {',
      '    listen 8080;',
      '    location / { return 301 https://$hots$request_uri; }',
      '    location ~ ^/(unclosed { return 200; }',
      '    location ~ ^/x { proxy_pass http://app/y; }',
      '  }',
    ].join('\n'),
  );
  const found = problems('compile.conf', text);
  assert.equal(found.length, 3, found.join('\n'));
  assert.equal(found[0], 'compile.conf:6:18: unknown "hots" variable');
  assert.match(found[1]!, /^compile\.conf:7:5: invalid regular expression "\^\/\(unclosed": .*Unterminated group/);
  assert.equal(found[2], 'compile.conf:8:22: "proxy_pass" cannot have URI part in location given by regular expression');
});

test('syntax errors are reported with line and column', () => {
  // As nginx: the `}` after a directive missing its `;` is the error.
  assert.equal(problems('syntax.conf', 'events {}\nhttp {\n  server {\n    listen 80\n  }\n')[0], 'syntax.conf:5:3: unexpected "}"');
});

test('YAML: unknown keys and bad values name their line', () => {
  const yaml = ['http:', '  servers:', '    - listen: [{ port: 8080 }]', '      locations:', '        - location: /api', '          proxy_pass: http://127.0.0.1:9000', '          proxy_read_timout: 5s', '          proxy_send_timeout: soon'].join('\n');
  const found = problems('bad.yaml', yaml);
  assert.equal(found.length, 2, found.join('\n'));
  assert.match(found.find((f) => f.includes('proxy_read_timout'))!, /^bad\.yaml:7:11: unknown key "proxy_read_timout"/);
  assert.match(found.find((f) => f.includes('soon'))!, /^bad\.yaml:8:31: .*invalid time value "soon"/);
});

test('YAML and nginx syntax compile to the same model', () => {
  const conf = write('same.conf', seedLike('  upstream app { server 127.0.0.1:9000 weight=2 max_fails=3 fail_timeout=30s; keepalive 8; }\n  server { listen 127.0.0.1:8080; location /api { proxy_pass http://app; proxy_read_timeout 300; proxy_set_header Host $host; } }'));
  const yaml = write(
    'same.yaml',
    [
      'worker_processes: 1', // nginx's default; fulcrum's own format defaults to auto
      'worker_connections: 64',
      'http:',
      '  upstreams:',
      '    - name: app',
      '      keepalive: 8',
      '      servers:',
      '        - { address: "127.0.0.1:9000", weight: 2, max_fails: 3, fail_timeout: 30s }',
      '  servers:',
      '    - listen: [{ address: 127.0.0.1, port: 8080 }]',
      '      locations:',
      '        - location: /api',
      '          proxy_pass: http://app',
      '          proxy_read_timeout: 300',
      '          proxy_set_header: [{ name: Host, value: $host }]',
    ].join('\n'),
  );
  assert.deepEqual(loadConfig(yaml).config, loadConfig(conf).config);
});

test('worker_processes defaults: 1 in nginx syntax (as nginx), auto in fulcrum\'s own format', () => {
  const conf = write('defaults.conf', 'http { server { listen 127.0.0.1:8080; return 204; } }\n');
  const yaml = write('defaults.yaml', ['http:', '  servers:', '    - listen: [{ address: 127.0.0.1, port: 8080 }]', '      return: { code: 204 }'].join('\n'));
  assert.equal(loadConfig(conf).config.worker_processes, 1);
  assert.equal(loadConfig(yaml).config.worker_processes, 'auto');
});
