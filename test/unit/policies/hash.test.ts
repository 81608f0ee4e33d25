/** hash KEY: nginx's CRC32-based hash with rehashing (Cache::Memcached compatible). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { HashPolicy } from '../../../src/balancer/policies/hash.js';
import { crc32 } from '../../../src/balancer/crc32.js';
import { compileTemplate } from '../../../src/variables/template.js';
import { near, none, picks, pool, req, retrySequence, snapshot, tally, vars } from './fixtures.js';
import { NGINX, nginxPool } from './vectors.js';

const key = compileTemplate('$arg_k');
const at = (k: string) => req(vars({ args: `k=${k}` }));

test('CRC-32 as nginx computes it, over the UTF-8 bytes of the key', () => {
  assert.equal(crc32(''), 0);
  assert.equal(crc32('123456789'), 0xcbf43926);
  for (const s of ['user1', 'ü', 'é€', '😀x', 'a\ud800b', '/path?q=1']) assert.equal(crc32(s), zlib.crc32(Buffer.from(s, 'utf8')), JSON.stringify(s));
});

test('the same server as nginx 1.22 for 300 keys, with and without a server marked down', () => {
  for (const [set, down] of [[NGINX.hash, false], [NGINX.hashDown, true]] as const) {
    const policy = new HashPolicy(snapshot(nginxPool(down)), key);
    for (const [k, port] of Object.entries(set)) assert.equal(policy.pick(at(k), none)?.endpoint.port, port, `${k} (down: ${down})`);
  }
});

test('10,000 keys spread by weight 1,2,1,1 (± 2% of the picks)', () => {
  const policy = new HashPolicy(snapshot(pool(4, { weights: [1, 2, 1, 1] })), key);
  const names = Array.from({ length: 10_000 }, (_, i) => policy.pick(at(`user${i}`), none)!.address);
  const t = tally(names);
  near(t.s1!, 4000, 200, 's1');
  near(t.s0!, 2000, 200, 's0');
});

test('an empty key goes round robin (nginx); retries never repeat', () => {
  const policy = new HashPolicy(snapshot(pool(3)), key);
  assert.deepEqual(picks(policy, 3, at('')), ['s0', 's1', 's2']);
  assert.deepEqual(retrySequence(policy, at('abc')).sort(), ['s0', 's1', 's2']);
  assert.equal(policy.pick(at('abc'), none), policy.pick(at('abc'), none));
});
