/** The balancing directives in both config formats: nginx syntax and YAML give the same model; mistakes are errors with a line. */
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

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-balancing-config-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function load(name: string, text: string) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const loaded = loadConfig(file);
  const result = compile(loaded, { registry: new ServerRegistry(), logSinks: new LogSinks(), generation: 1, dryRun: true });
  return { config: loaded.config, table: result.table, warnings: result.warnings };
}

function problems(text: string): string[] {
  try {
    load('bad.conf', text);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.diagnostics.map((d) => formatDiagnostic(d).replace(dir + '/', ''));
  }
}

const http = (inner: string) => `events {}\nhttp {\n${inner}\n  server { listen 127.0.0.1:0; location / { proxy_pass http://u; } }\n}\n`;

const NGINX = http(`
  upstream u {
    least_conn;
    sticky cookie srv_id expires=1h domain=.example.org path=/ httponly secure samesite=lax secret=s3cret;
    health_check interval=2s jitter=500ms fails=2 passes=3 uri=/healthz status=200-399,!302 body=^ok host=app.internal timeout=1s mandatory;
    panic_threshold 50%;
    retry_budget 20% min=5 window=5s;
    server 127.0.0.1:8081 weight=2 slow_start=30s;
    server 127.0.0.1:8082 drain;
    server 127.0.0.1:8083 down;
    server 127.0.0.1:8084 backup max_conns=10;
  }`);

const YAML = `
http:
  upstreams:
    - name: u
      balance: { method: least_conn }
      sticky: { cookie: srv_id, expires: 1h, domain: .example.org, path: /, httponly: true, secure: true, samesite: lax, secret: s3cret }
      health_check: { interval: 2s, jitter: 500ms, fall: 2, rise: 3, uri: /healthz, status: ["200-399", "!302"], body: "^ok", host: app.internal, timeout: 1s, mandatory: true }
      panic_threshold: 50
      retry_budget: { percent: 20, min: 5, window: 5s }
      servers:
        - { address: "127.0.0.1:8081", weight: 2, slow_start: 30s }
        - { address: "127.0.0.1:8082", drain: true }
        - { address: "127.0.0.1:8083", down: true }
        - { address: "127.0.0.1:8084", backup: true, max_conns: 10 }
  servers:
    - listen: [{ address: 127.0.0.1, port: 0 }]
      locations: [{ location: /, proxy_pass: "http://u" }]
`;

test('nginx syntax and YAML give the same upstream model', () => {
  const a = load('a.conf', NGINX).config.http.upstreams[0]!;
  const b = load('b.yaml', YAML).config.http.upstreams[0]!;
  assert.deepEqual(a, b);
  assert.deepEqual(a.sticky, { cookie: 'srv_id', expires: 3_600_000, domain: '.example.org', path: '/', httponly: true, secure: true, samesite: 'lax', secret: 's3cret' });
  assert.deepEqual(a.health_check, {
    type: 'http', interval: 2000, jitter: 500, timeout: 1000, rise: 3, fall: 2, uri: '/healthz', method: 'GET',
    status: ['200-399', '!302'], body: '^ok', host: 'app.internal', mandatory: true,
  });
  assert.deepEqual(a.retry_budget, { percent: 20, min: 5, window: 5000 });
  assert.equal(a.panic_threshold, 50);
  assert.deepEqual(a.servers.map((s) => [s.weight, s.slow_start, s.drain, s.down, s.backup, s.max_conns]), [
    [2, 30_000, false, false, false, 0],
    [1, 0, true, false, false, 0],
    [1, 0, false, true, false, 0],
    [1, 0, false, false, true, 10],
  ]);
});

test('every method compiles, in both syntaxes, to the policy it names', () => {
  const cases: [string, string, string][] = [
    ['', 'round_robin', 'round_robin'],
    ['least_conn;', 'least_conn', 'least_conn'],
    ['ip_hash;', 'ip_hash', 'ip_hash'],
    ['hash $request_uri;', 'hash $request_uri', 'hash'],
    ['hash $cookie_user consistent;', 'hash $cookie_user consistent', 'hash consistent'],
    ['random;', 'random', 'random'],
    ['random two;', 'random two least_conn', 'random two least_conn'],
    ['random two least_time=last_byte;', 'random two least_time=last_byte', 'random two least_time'],
    ['least_time header;', 'least_time header', 'least_time header'],
    ['least_time last_byte inflight;', 'least_time last_byte', 'least_time last_byte'],
  ];
  for (const [directive, method, policy] of cases) {
    const g = load('m.conf', http(`upstream u { ${directive} server 127.0.0.1:1; server 127.0.0.1:2; }`)).table.upstreams.get('u')!;
    g.activate();
    assert.equal(g.method, method, directive);
    assert.equal(g.policy.name, policy, directive);
    g.retire();
  }
  const y = load('m.yaml', `http:\n  upstreams:\n    - name: u\n      balance: { method: hash, key: $arg_id, consistent: true }\n      servers: [{ address: "127.0.0.1:1" }]\n  servers:\n    - listen: [{ port: 0, address: 127.0.0.1 }]\n      locations: [{ location: /, proxy_pass: "http://u" }]\n`);
  assert.equal(y.table.upstreams.get('u')!.method, 'hash $arg_id consistent');
  const s = load('s.conf', http('upstream u { random two least_conn; sticky cookie sid secret=x; panic_threshold 30; server 127.0.0.1:1; }')).table.upstreams.get('u')!;
  s.activate();
  assert.equal(s.policy.name, 'random two least_conn + sticky cookie sid');
  assert.ok(s.sticky !== undefined);
  s.retire();
});

test('mistakes are errors that name the directive and line', () => {
  assert.deepEqual(problems(http('upstream u { hash $request_uri; server 127.0.0.1:1 slow_start=10s; }')), [
    'bad.conf:3:33: "slow_start" cannot be used with "hash $request_uri": changing weights would move keys (as in nginx)',
  ]);
  assert.match(problems(http('upstream u { ip_hash; least_conn; server 127.0.0.1:1; }'))[0]!, /load balancing method redefined/);
  assert.match(problems(http('upstream u { sticky learn create=$x; server 127.0.0.1:1; }'))[0]!, /sticky method "learn" is not supported/);
  assert.match(problems(http('upstream u { sticky cookie a samesite=weird; server 127.0.0.1:1; }'))[0]!, /samesite=strict\|lax\|none/);
  assert.match(problems(http('upstream u { hash $nope; server 127.0.0.1:1; }'))[0]!, /unknown "nope" variable in the hash key/);
  assert.match(problems(http('upstream u { health_check match=ok; server 127.0.0.1:1; }'))[0]!, /"match" blocks are not supported/);
  assert.match(problems(http('upstream u { health_check status=2xx; server 127.0.0.1:1; }'))[0]!, /expected a status code or range/);
  assert.match(problems(http('upstream u { random; server 127.0.0.1:1; server 127.0.0.1:2 backup; }'))[0]!, /does not support backup servers/);
  assert.match(problems(http('upstream u { retry_budget 20% burst=3; server 127.0.0.1:1; }'))[0]!, /invalid parameter "burst=3"/);
  assert.match(problems(http('upstream u { sticky cookie a secret=env:FULCRUM_TEST_UNSET_VARIABLE; server 127.0.0.1:1; }'))[0]!, /FULCRUM_TEST_UNSET_VARIABLE/);
  const inLocation = 'events {}\nhttp {\n  upstream u { server 127.0.0.1:1; }\n  server { listen 127.0.0.1:0; location / { proxy_pass http://u; health_check; } }\n}\n';
  assert.match(problems(inLocation)[0]!, /fulcrum takes "health_check" in the upstream block/);
});
