/**
 * least_time: lowest peak-EWMA latency x (requests in flight + 1) / weight,
 * with one pick in 128 exploring the next server in turn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXPLORE_EVERY, LeastTimePolicy } from '../../../src/balancer/policies/least-time.js';
import { STALE_MS, observeLatency } from '../../../src/balancer/peak-ewma.js';
import { none, picks, pool, req, retrySequence, snapshot, tally } from './fixtures.js';

test('servers not measured yet are tried first', () => {
  const servers = pool(3);
  const policy = new LeastTimePolicy(snapshot(servers), false);
  servers[0]!.watcher!.timing(servers[0]!, 5, false);
  assert.deepEqual(picks(policy, 2), ['s1', 's2']);
});

test('over 10,000 picks a server 50 ms slower gets none while its measurement is fresh, then one exploring pick', () => {
  const servers = pool(2);
  const policy = new LeastTimePolicy(snapshot(servers), false);
  servers[0]!.watcher!.timing(servers[0]!, 5, false);
  servers[1]!.watcher!.timing(servers[1]!, 55, false);
  const now = servers[1]!.peakEwmaAt;
  assert.deepEqual(tally(picks(policy, 10_000, req(undefined, now + 10))), { s0: 10_000 });
  // Not measured for STALE_MS: within EXPLORE_EVERY picks it gets one request, then not again for STALE_MS.
  const later = req(undefined, now + STALE_MS + 1);
  const names: string[] = [];
  for (let i = 0; i < 2 * EXPLORE_EVERY; i++) {
    const s = policy.pick(later, none)!;
    names.push(s.address);
    if (s === servers[1]) assert.match(policy.explain(s), /^least_time header: measuring again \(not measured for over 1000 ms\): 55\.0 ms peak-EWMA before$/);
  }
  assert.equal(names.filter((n) => n === 's1').length, 1, names.join(' '));
  assert.equal(picks(policy, 10_000, later).filter((n) => n === 's1').length, 0);
});

test('requests in flight count: a busy fast server loses to an idle slower one', () => {
  const servers = pool(2);
  const policy = new LeastTimePolicy(snapshot(servers), false);
  servers[0]!.watcher!.timing(servers[0]!, 5, false);
  servers[1]!.watcher!.timing(servers[1]!, 55, false);
  for (let i = 0; i < 11; i++) servers[0]!.acquire(); // 5 * 12 = 60 > 55 * 1
  assert.equal(policy.pick(req(), none)?.address, 's1');
  servers[0]!.release();
  servers[0]!.release(); // 5 * 10 = 50 < 55
  assert.equal(policy.pick(req(), none)?.address, 's0');
});

test('last_byte measures whole responses and ignores header times', () => {
  const servers = pool(2);
  const policy = new LeastTimePolicy(snapshot(servers), true);
  servers[0]!.watcher!.timing(servers[0]!, 100, false);
  servers[0]!.watcher!.timing(servers[0]!, 3, true);
  servers[1]!.watcher!.timing(servers[1]!, 30, true);
  assert.equal(servers[0]!.peakEwmaMs, 3);
  assert.deepEqual(picks(policy, 3), ['s0', 's0', 's0']);
});

test('peak EWMA: a slower sample is taken at once, a faster one blended by the time since the last', () => {
  const s = pool(1)[0]!;
  observeLatency(s, 10, 0);
  observeLatency(s, 50, 1);
  assert.equal(s.peakEwmaMs, 50);
  observeLatency(s, 10, 2);
  assert.ok(s.peakEwmaMs > 49.9, `${s.peakEwmaMs}`);
  const prev = s.peakEwmaMs;
  observeLatency(s, 10, 1002); // a second later: e^-1 of the old value is kept
  assert.ok(Math.abs(s.peakEwmaMs - (prev * Math.exp(-1) + 10 * (1 - Math.exp(-1)))) < 1e-9, `${s.peakEwmaMs}`);
  observeLatency(s, 10, 60_000);
  assert.ok(s.peakEwmaMs < 10.01, `${s.peakEwmaMs}`);
});

test('weights divide the cost; unusable servers are skipped; retries never repeat', () => {
  const servers = pool(3, { weights: [1, 4, 1] });
  const policy = new LeastTimePolicy(snapshot(servers), false);
  for (const s of servers) s.watcher!.timing(s, 20, false);
  servers[2]!.watcher!.timing(servers[2]!, 10, false); // peak stays 20: a faster sample blends in slowly
  assert.equal(policy.pick(req(), none)?.address, 's1');
  servers[1]!.healthy = false;
  assert.deepEqual(retrySequence(policy), ['s2', 's0']); // s2's peak blended a 10 ms sample in: a hair under s0's 20
});
