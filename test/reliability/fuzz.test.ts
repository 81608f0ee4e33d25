/**
 * Reliability, issue 3 "Done when": random and mutated requests and configs
 * fed to a running fulcrum (fast-check); no crash, hang or leak.
 *
 * - Requests: built from HTTP/1.1 grammar pieces (methods, targets, versions,
 *   framing headers, chunked bodies, pipelining, odd line endings), mutated
 *   byte by byte, or plain random bytes; delivered in random pieces on a raw
 *   socket, then half-closed. fulcrum must close every connection within a
 *   bound (no hang), every byte it sends must be HTTP/1.1 responses with a
 *   valid status, and it must keep answering a health request.
 * - Configs: a seed config whose second half is mutated token by token, fed
 *   with SIGHUP: every reload ends in "reloaded" or "reload failed", the
 *   health server in the unmutated half keeps answering, and `fulcrum check`
 *   agrees with the reload about which configs are valid.
 * - Leaks: after all of it, open descriptors and RSS are back near where
 *   they started.
 *
 * Reproduce: FUZZ_SEED=<seed> (printed); FUZZ_SEED=random for a new one;
 * FUZZ_RUNS=<n> requests (default 1500).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import { spawnBackends, type TestBackends } from '../support/backends.js';
import { runFulcrum } from '../support/fulcrum.js';
import { parseHttpResponses } from '../support/http-client.js';
import { freePort } from '../support/ports.js';
import { alive, openFds, probeOnce, RawClient, rssMiB, startProxy, type Proxy } from '../support/reliability.js';
import { sleep } from '../support/wait.js';

function seedFromEnv(): number {
  const env = process.env['FUZZ_SEED'];
  if (env === undefined || env === '') return 0x0f01c_5eed;
  if (env === 'random') return (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", not ${env}`);
  return n;
}

const SEED = seedFromEnv();
const REQUEST_RUNS = Number(process.env['FUZZ_RUNS'] ?? 1500);
/** fulcrum must have closed the connection this long after the client's FIN. */
const CLOSE_BOUND_MS = 4000;

// ============================================================ request generators

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PRI', 'get', 'FOO', 'G ET', ''];
const TARGETS = [
  '/api/hello', '/api/echo', '/api/whoami', '/api/status/503', '/api/chunked?n=3&interval=0', '/api/bytes?n=70000', '/health', '/static', '/r',
  '/api/../health', '/api/%2e%2e/x', '/api%2F..%2Fx', '//api//hello', '/api/%00', '/api/%zz', '/api/..\\x', '*', 'http://a.test/api/hello',
  'http://b.test:99/health', 'a.test:443', '/api/hello#frag', '/api/hello?x=1&y=%20', '/' + 'a'.repeat(9000), '/\x80\xff', '',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', ''];
const HEADER_NAMES = ['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'TE', 'Keep-Alive', 'X-Request-ID', 'X-Forwarded-For', 'Cookie', 'X_Under', 'X-A', 'Host ', ' Host', 'Content-Length\t', ''];
const HEADER_VALUES = [
  'a.test', 'b.test', 'localhost:8080', '[::1]', 'user@a', 'a/b', '', ' ', '0', '5', '11', '-1', '+5', '5, 5', '0x10', '99999999999999999999', 'chunked', 'gzip, chunked',
  ',chunked', 'chunked, chunked', 'identity', 'close', 'keep-alive', 'Upgrade', 'h2c', 'websocket', '100-continue', 'trailers', 'timeout=1', 'a\x00b', 'a\x7fb', '\x80\xfe',
  'x'.repeat(9000), 'abc123',
];
const EOLS = ['\r\n', '\r\n', '\r\n', '\n', '\r', '\r\n '];

/** Mostly the usual pieces, sometimes odd ones: enough valid requests reach the proxy path. */
function usually<T>(common: readonly T[], odd: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...common) }, { weight: 2, arbitrary: fc.constantFrom(...odd) });
}

const methodArb = usually(['GET', 'POST', 'HEAD', 'PUT'], METHODS);
const targetArb = usually(['/api/hello', '/api/echo', '/api/whoami', '/health', '/static'], TARGETS);
const versionArb = usually(['HTTP/1.1', 'HTTP/1.0'], VERSIONS);
const eolArb = usually(['\r\n'], EOLS);
const headerArb = fc.tuple(
  usually(['Content-Length', 'Transfer-Encoding', 'Connection', 'X-A'], HEADER_NAMES),
  usually(['0', '5', 'chunked', 'keep-alive', 'close', 'abc123'], HEADER_VALUES),
  eolArb,
).map(([n, v, eol]) => `${n}: ${v}${eol}`);

const chunkedBodyArb = fc.array(fc.tuple(fc.nat({ max: 40 }), fc.constantFrom('', ';ext=1', ';a=\x01', ' '), fc.boolean()), { maxLength: 4 }).map((chunks) =>
  chunks.map(([size, ext, honest]) => `${size.toString(16)}${ext}\r\n${'d'.repeat(honest ? size : size + 3)}\r\n`).join('') + '0\r\n\r\n',
);

const grammarRequestArb = fc.tuple(
  methodArb,
  targetArb,
  versionArb,
  eolArb,
  fc.array(headerArb, { maxLength: 5 }),
  fc.boolean(),
  fc.oneof(fc.constant(''), fc.string({ maxLength: 30 }), chunkedBodyArb),
).map(([method, target, version, eol, headers, withHost, body]) =>
  `${method} ${target} ${version}${eol}${withHost ? 'Host: a.test\r\n' : ''}${headers.join('')}\r\n${body}`,
);

const SEEDS = [
  'GET /api/hello HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'POST /api/echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello',
  'POST /api/echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET /api/hello HTTP/1.1\r\nHost: a.test\r\n\r\nGET /health HTTP/1.1\r\nHost: a.test\r\n\r\n',
  'GET /api/whoami HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  'GET /api/whoami HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  'PUT /api/echo HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
];
const SPECIAL_BYTES = [0x0d, 0x0a, 0x00, 0x20, 0x09, 0x3a, 0x2c, 0x3b, 0x30, 0x31, 0x35, 0x61, 0x66, 0x2f, 0x25, 0x2e, 0x7f, 0x80, 0xff];

type Mutation = { kind: 'set' | 'insert' | 'delete' | 'dupLine'; at: number; byte: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('set', 'insert', 'delete', 'dupLine'),
  at: fc.nat(),
  byte: fc.oneof(fc.constantFrom(...SPECIAL_BYTES), fc.nat({ max: 255 })),
}) as fc.Arbitrary<Mutation>;

function mutate(text: string, mutations: Mutation[]): string {
  let s = text;
  for (const m of mutations) {
    if (s.length === 0) break;
    const at = m.at % s.length;
    const ch = String.fromCharCode(m.byte);
    if (m.kind === 'set') s = s.slice(0, at) + ch + s.slice(at + 1);
    else if (m.kind === 'insert') s = s.slice(0, at) + ch + s.slice(at);
    else if (m.kind === 'delete') s = s.slice(0, at) + s.slice(at + 1);
    else {
      const start = s.lastIndexOf('\r\n', at) + 2;
      const end = s.indexOf('\r\n', at);
      if (end > start) s = s.slice(0, end + 2) + s.slice(start, end + 2) + s.slice(end + 2);
    }
  }
  return s;
}

const mutatedRequestArb = fc.tuple(fc.constantFrom(...SEEDS), fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([seed, ms]) => mutate(seed, ms));
const randomBytesArb = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1'));

const requestCaseArb = fc.record({
  text: fc.oneof({ weight: 4, arbitrary: grammarRequestArb }, { weight: 4, arbitrary: mutatedRequestArb }, { weight: 1, arbitrary: randomBytesArb }),
  /** Where the bytes are cut into separate writes. */
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
});

// ============================================================ config generators

const CONFIG_VOCABULARY = [
  ';', '{', '}', 'server', 'location', 'upstream', 'listen', 'proxy_pass', 'return', 'root', 'alias', 'index', 'server_name', 'client_max_body_size',
  'proxy_read_timeout', 'proxy_next_upstream', 'keepalive', 'weight=0', 'max_fails=-1', 'backup', 'down', 'http://', 'http://fz', 'https://fz', '=', '~', '~*', '^~',
  '/', '/x', '$host', '$request_uri', '${', '$1', '"', "'", '\\', '#', '0', '1', '65536', '1x', '10s', '-5', 'on', 'off', 'default_server', 'ssl', 'http2',
  'add_header', 'proxy_set_header', 'X-A', '""', 'error timeout', 'non_idempotent', 'allow', 'deny', 'all', '127.0.0.1', '::1', 'fz', 'if', 'rewrite', '(', ')',
  'large_client_header_buffers', '4', '8k', '0k', 'merge_slashes', 'access_log', 'log_format', '\n',
];

type ConfigEdit = { kind: 'delete' | 'replace' | 'insert' | 'duplicate'; at: number; word: string };

const configEditArb: fc.Arbitrary<ConfigEdit> = fc.record({
  kind: fc.constantFrom('delete', 'replace', 'insert', 'duplicate'),
  at: fc.nat(),
  word: fc.constantFrom(...CONFIG_VOCABULARY),
}) as fc.Arbitrary<ConfigEdit>;

function editTokens(text: string, edits: ConfigEdit[]): string {
  const tokens = text.split(/(\s+)/).filter((t) => t.length > 0);
  for (const e of edits) {
    if (tokens.length === 0) break;
    const at = e.at % tokens.length;
    if (e.kind === 'delete') tokens.splice(at, 1);
    else if (e.kind === 'replace') tokens[at] = e.word;
    else if (e.kind === 'insert') tokens.splice(at, 0, ' ', e.word, ' ');
    else tokens.splice(at, 0, tokens[at]!, ' ');
  }
  return tokens.join('');
}

// ============================================================ the harness

interface CaseResult {
  closedAfterFinMs: number;
  data: Buffer;
}

/** Sends `text` in pieces cut at `cuts`, half-closes, and waits for fulcrum to close. */
async function feed(port: number, text: string, cuts: number[]): Promise<CaseResult> {
  const bytes = Buffer.from(text, 'latin1');
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const client = await RawClient.connect(port, { keepBytes: 1 << 20 });
  try {
    let last = 0;
    for (const p of [...points, bytes.length]) {
      if (p > last) await client.write(bytes.subarray(last, p));
      last = p;
      await nextTurn();
    }
    client.socket.end();
    const finAt = performance.now();
    await client.waitForClose(CLOSE_BOUND_MS);
    return { closedAfterFinMs: client.closed ? client.closedAt! - finAt : Infinity, data: client.data };
  } finally {
    client.destroy();
  }
}

/** Whether `data` is entirely HTTP/1.1 responses with valid statuses (a last one may be cut by a reset). */
function responseProblems(data: Buffer): string | undefined {
  if (data.length === 0) return undefined;
  const responses = parseHttpResponses(data, { connectionClosed: true });
  if (responses.length === 0) return `not an HTTP response: ${JSON.stringify(data.subarray(0, 80).toString('latin1'))}`;
  for (const r of responses) {
    if (r.httpVersion !== '1.1') return `response version ${r.httpVersion}`;
    if (r.status < 100 || r.status > 599) return `status ${r.status}`;
  }
  return undefined;
}

describe('fuzz: random and mutated input to a running fulcrum; no crash, hang or leak', () => {
  let backends: TestBackends;
  let proxy: Proxy;
  let baseline: { fds: number; rss: number };

  const FIXED_HTTP = (backendPort: number) => [
    `upstream u { server 127.0.0.1:${backendPort}; }`,
    'client_header_timeout 1s;',
    'client_body_timeout 1s;',
    'keepalive_timeout 2s;',
  ].join('\n');
  const FIXED_SERVER = [
    'server_name a.test;',
    'location = /health { return 200 "healthy\\n"; }',
    'location /api { proxy_pass http://u; proxy_read_timeout 2s; }',
    'location /static { return 200 "static\\n"; }',
    'location = /r { return 301 https://$host$request_uri; }',
  ].join('\n');

  before(async () => {
    backends = await spawnBackends(1);
    proxy = await startProxy({ http: FIXED_HTTP(backends.ports[0]!), server: FIXED_SERVER });
    // Warm up (pools, JIT) before the baseline.
    for (let i = 0; i < 50; i++) await probeOnce(proxy.port, i % 2 === 0 ? '/api/hello' : '/health', 2000);
    await sleep(300);
    baseline = { fds: openFds(proxy.fulcrum.pid), rss: rssMiB(proxy.fulcrum.pid) };
  });
  after(async () => {
    await proxy?.stop();
    await backends?.stop();
  });

  test(`requests: ${REQUEST_RUNS} grammar-built, mutated and random inputs in random pieces`, async (t) => {
    t.diagnostic(`seed ${SEED} (FUZZ_SEED=${SEED} to reproduce)`);
    let n = 0;
    const slowest = { ms: 0, text: '' };
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestCaseArb, async ({ text, cuts }) => {
        const r = await feed(proxy.port, text, cuts);
        assert.ok(r.closedAfterFinMs <= CLOSE_BOUND_MS, `fulcrum did not close the connection within ${CLOSE_BOUND_MS} ms of the client's FIN`);
        if (r.closedAfterFinMs > slowest.ms) Object.assign(slowest, { ms: r.closedAfterFinMs, text });
        const problem = responseProblems(r.data);
        assert.equal(problem, undefined, problem);
        for (const res of parseHttpResponses(r.data)) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (++n % 50 === 0) {
          assert.ok(alive(proxy.fulcrum.pid), 'fulcrum is alive');
          assert.equal(await probeOnce(proxy.port, '/health', 2000), 200, 'fulcrum answers a health request');
        }
      }),
      { seed: SEED, numRuns: REQUEST_RUNS, endOnFailure: true, interruptAfterTimeLimit: 45_000, markInterruptAsFailure: false },
    );
    t.diagnostic(`${n} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; slowest close ${Math.round(slowest.ms)} ms for ${JSON.stringify(slowest.text.slice(0, 80))}`);
    assert.ok(n >= Math.min(REQUEST_RUNS, 100), `ran ${n} cases`);
    assert.equal(await probeOnce(proxy.port, '/health', 2000), 200);
    assert.equal(await probeOnce(proxy.port, '/api/hello', 2000), 200);
  });

  test('configs: 40 mutated configs through SIGHUP (reloaded or reload failed, never a crash), and `fulcrum check` agrees with the reload', async (t) => {
    const port2 = await freePort();
    const fuzzPart = [
      'upstream fz { server 127.0.0.1:9 max_fails=2 fail_timeout=5s; server 127.0.0.1:10 backup; keepalive 4; }',
      `server { listen 127.0.0.1:${port2}; server_name fuzz.test *.fuzz.test;`,
      '  client_max_body_size 10k;',
      '  location / { return 200 "fuzz $host\\n"; }',
      '  location ~* \\.(png|jpg)$ { add_header X-A "b" always; return 204; }',
      '  location ^~ /p/ { proxy_pass http://fz/q/; proxy_set_header Host $host; proxy_next_upstream error timeout http_502; }',
      '  location = /exact { root /tmp; index index.html; }',
      '}',
    ].join('\n');
    const head = `events { }\nhttp {\naccess_log off;\n${FIXED_HTTP(backends.ports[0]!)}\nserver {\nlisten 127.0.0.1:${proxy.port};\n${FIXED_SERVER}\n}\n`;
    const dir = proxy.fulcrum.dir;
    let reloaded = 0;
    let failed = 0;
    const disagreements: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(configEditArb, { minLength: 1, maxLength: 3 }), fc.boolean(), async (edits, runCheck) => {
        const text = `${head}${editTokens(fuzzPart, edits)}\n}\n`;
        const from = proxy.fulcrum.logs.length;
        let ok: boolean;
        try {
          await proxy.fulcrum.reload(text);
          ok = true;
          reloaded++;
        } catch (err) {
          assert.match((err as Error).message, /reload failed/, 'the reload ended with "reload failed", not a timeout or an exit');
          ok = false;
          failed++;
        }
        assert.ok(alive(proxy.fulcrum.pid), 'fulcrum survived the reload');
        assert.equal(await probeOnce(proxy.port, '/health', 2000), 200, 'the unmutated server still answers');
        const logs = proxy.fulcrum.logs.slice(from);
        assert.ok(!logs.some((e) => /TypeError|ReferenceError|RangeError|\n\s+at /.test(JSON.stringify(e))), `no internal error in the log: ${JSON.stringify(logs)}`);
        if (runCheck) {
          const path = join(dir, 'check.conf');
          writeFileSync(path, text);
          const r = await runFulcrum(['check', '--config', path], { cwd: dir });
          assert.ok(r.code === 0 || r.code === 1, `fulcrum check exited ${r.code}: ${r.stderr}`);
          assert.ok(!/TypeError|ReferenceError|RangeError|\n\s+at /.test(r.stderr), `fulcrum check crashed:\n${r.stderr}`);
          if ((r.code === 0) !== ok) disagreements.push(`check exit ${r.code}, reload ${ok ? 'ok' : 'failed'}: ${JSON.stringify(editTokens(fuzzPart, edits))}`);
        }
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true, interruptAfterTimeLimit: 40_000, markInterruptAsFailure: false },
    );
    t.diagnostic(`${reloaded} reloaded, ${failed} refused`);
    assert.deepEqual(disagreements, [], 'fulcrum check and the reload agree');
    assert.ok(failed > 0, 'the mutations did produce invalid configs');
  });

  test('after all of it: no descriptor leak, RSS bounded, still serving', async (t) => {
    // Connections closing (lingering ones are cut by the sweep) and idle pools expire.
    await sleep(2500);
    const fds = openFds(proxy.fulcrum.pid);
    const rss = rssMiB(proxy.fulcrum.pid);
    t.diagnostic(`fds ${baseline.fds} -> ${fds}; RSS ${baseline.rss.toFixed(1)} -> ${rss.toFixed(1)} MiB`);
    assert.ok(fds <= baseline.fds + 5, `open descriptors ${baseline.fds} -> ${fds}`);
    assert.ok(rss < baseline.rss + 60, `RSS ${baseline.rss.toFixed(1)} -> ${rss.toFixed(1)} MiB`);
    assert.equal(await probeOnce(proxy.port, '/health', 2000), 200);
  });
});
