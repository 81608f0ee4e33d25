/** ip_hash: nginx's hash of the first three IPv4 octets (or the whole IPv6 address), weights, down servers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpHashPolicy, ipHashKey } from '../../../src/balancer/policies/ip-hash.js';
import { seededRandom } from '../../../src/balancer/rng.js';
import { none, near, pool, req, retrySequence, snapshot, tally, vars } from './fixtures.js';
import { NGINX, nginxPool } from './vectors.js';

const pick = (policy: IpHashPolicy, remoteAddr: string): string => policy.pick(req(vars({ remoteAddr })), none)?.address ?? '-';

test('the same server as nginx 1.22 for 120 client addresses, with and without a server marked down', () => {
  for (const [set, down] of [[NGINX.ipHash, false], [NGINX.ipHashDown, true]] as const) {
    const servers = nginxPool(down);
    const policy = new IpHashPolicy(snapshot(servers));
    for (const [ip, port] of Object.entries(set)) assert.equal(policy.pick(req(vars({ remoteAddr: ip })), none)?.endpoint.port, port, `${ip} (down: ${down})`);
  }
});

test('the key is the first three octets of IPv4, all of IPv6; ::ffff:a.b.c.d counts as IPv4', () => {
  const out = new Uint8Array(16);
  assert.equal(ipHashKey('10.1.2.3', out), 3);
  assert.deepEqual([...out.subarray(0, 3)], [10, 1, 2]);
  assert.equal(ipHashKey('::ffff:10.1.2.3', out), 3);
  assert.deepEqual([...out.subarray(0, 3)], [10, 1, 2]);
  assert.equal(ipHashKey('2001:db8::1', out), 16);
  assert.deepEqual([...out], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(ipHashKey('fe80::1%eth0', out), 16);
  assert.equal(ipHashKey('unix:', out), 0);
  assert.equal(ipHashKey('1.2.3', out), 0);
  const policy = new IpHashPolicy(snapshot(pool(5)));
  assert.equal(pick(policy, '10.1.2.3'), pick(policy, '10.1.2.250'));
  assert.equal(pick(policy, '10.1.2.3'), pick(policy, '::ffff:10.1.2.77'));
});

test('10,000 random /24 networks spread by weight 2,1,1 (± 2% of the picks)', () => {
  const policy = new IpHashPolicy(snapshot(pool(3, { weights: [2, 1, 1] })));
  const rand = seededRandom(11);
  const names: string[] = [];
  for (let i = 0; i < 10_000; i++) names.push(pick(policy, `${(rand() * 223 + 1) | 0}.${(rand() * 256) | 0}.${(rand() * 256) | 0}.9`));
  const t = tally(names);
  near(t.s0!, 5000, 200, 's0');
  near(t.s1!, 2500, 200, 's1');
});

test('a client keeps its server; when it is down only its clients move; retries never repeat', () => {
  const servers = pool(4);
  const policy = new IpHashPolicy(snapshot(servers));
  const clients = Array.from({ length: 200 }, (_, i) => `10.${i}.7.1`);
  const before = clients.map((c) => pick(policy, c));
  assert.deepEqual(clients.map((c) => pick(policy, c)), before);
  servers[1]!.configDown = true;
  const after = clients.map((c) => pick(policy, c));
  clients.forEach((_, i) => {
    if (before[i] !== 's1') assert.equal(after[i], before[i]);
    else assert.notEqual(after[i], 's1');
  });
  assert.deepEqual(retrySequence(policy, req(vars({ remoteAddr: '10.0.0.1' }))).sort(), ['s0', 's2', 's3']);
});
