/** hash KEY consistent: ketama with nginx's points (160 per weight unit); ~1/N keys move when one of N servers changes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KetamaPolicy, KetamaRing, ketamaPoints } from '../../../src/balancer/policies/ketama.js';
import { compileTemplate } from '../../../src/variables/template.js';
import { near, none, pool, req, retrySequence, snapshot, tally, vars } from './fixtures.js';
import { NGINX, nginxPool } from './vectors.js';

const key = compileTemplate('$arg_k');
const at = (k: string) => req(vars({ args: `k=${k}` }));
const KEYS = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);

function owners(servers: ReturnType<typeof pool>): Map<string, string> {
  const policy = new KetamaPolicy(snapshot(servers), key);
  return new Map(KEYS.map((k) => [k, policy.pick(at(k), none)!.address]));
}

test('160 points per weight unit, as nginx makes them', () => {
  assert.equal(ketamaPoints('127.0.0.1:8080', 1).length, 160);
  assert.equal(ketamaPoints('127.0.0.1:8080', 3).length, 480);
  assert.deepEqual(ketamaPoints('127.0.0.1:8080', 1).subarray(0, 3), ketamaPoints('127.0.0.1:8080', 2).subarray(0, 3));
});

test('the same server as nginx 1.22 for 300 keys, with and without a server marked down', () => {
  for (const [set, down] of [[NGINX.consistent, false], [NGINX.consistentDown, true]] as const) {
    const policy = new KetamaPolicy(snapshot(nginxPool(down)), key);
    for (const [k, port] of Object.entries(set)) assert.equal(policy.pick(at(k), none)?.endpoint.port, port, `${k} (down: ${down})`);
  }
});

test('adding an 11th server moves about 1/11 of 10,000 keys (± 3%), all of them to the new server', () => {
  const addresses = Array.from({ length: 11 }, (_, i) => `10.0.0.${i + 1}:8080`);
  const ten = owners(pool(10, { addresses }));
  const eleven = owners(pool(11, { addresses }));
  const moved = KEYS.filter((k) => ten.get(k) !== eleven.get(k));
  near(moved.length / KEYS.length, 1 / 11, 0.03, 'share of keys moved');
  for (const k of moved) assert.equal(eleven.get(k), '10.0.0.11:8080');
});

test('removing one of 10 servers moves only its keys (about 1/10, ± 3%)', () => {
  const addresses = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:8080`);
  const all = pool(10, { addresses });
  const before = owners(all);
  const after = owners(all.filter((_, i) => i !== 4));
  const moved = KEYS.filter((k) => before.get(k) !== after.get(k));
  near(moved.length / KEYS.length, 1 / 10, 0.03, 'share of keys moved');
  for (const k of moved) assert.equal(before.get(k), '10.0.0.5:8080');
});

test('weights 3,1 give about 3:1 of 10,000 keys (± 5%); retries never repeat', () => {
  const servers = pool(2, { addresses: ['10.0.0.1:80', '10.0.0.2:80'], weights: [3, 1] });
  const t = tally([...owners(servers).values()]);
  near(t['10.0.0.1:80']! / 10_000, 0.75, 0.05, 'share of the weight-3 server');
  const policy = new KetamaPolicy(snapshot(pool(5, { addresses: Array.from({ length: 5 }, (_, i) => `10.0.1.${i}:80`) })), key);
  assert.deepEqual(retrySequence(policy, at('x')).sort(), ['10.0.1.0:80', '10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80', '10.0.1.4:80']);
});

test('the ring lookup (indexed for large rings) finds the first point at or after the hash, wrapping', () => {
  for (const n of [3, 100]) {
    const ring = new KetamaRing(pool(n, { addresses: Array.from({ length: n }, (_, i) => `10.0.2.${i}:80`) }), new Array<number>(n).fill(1));
    const hashes = Array.from(ring.hashes);
    const probes = [0, 1, hashes[0]!, hashes[0]! + 1, hashes.at(-1)!, hashes.at(-1)! + 1, 0xffffffff, ...Array.from({ length: 2000 }, (_, i) => Math.floor((i * 2654435761) % 4294967296))];
    for (const h of probes) {
      let want = hashes.findIndex((x) => x >= h);
      if (want < 0) want = 0;
      assert.equal(ring.find(h), want, `n=${n} hash=${h}`);
    }
  }
});
