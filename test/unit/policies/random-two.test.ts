/** random two least_conn | least_time: the better of two distinct weighted draws. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXPLORE_EVERY } from '../../../src/balancer/policies/least-time.js';
import { RandomTwoPolicy } from '../../../src/balancer/policies/random-two.js';
import { seededRandom } from '../../../src/balancer/rng.js';
import { STALE_MS } from '../../../src/balancer/peak-ewma.js';
import { near, picks, pool, req, retrySequence, snapshot, tally } from './fixtures.js';

test('idle equal servers share 10,000 picks evenly (± 2%)', () => {
  const policy = new RandomTwoPolicy(snapshot(pool(3)), 'least_conn', false, seededRandom(5));
  const t = tally(picks(policy, 10_000));
  for (const n of ['s0', 's1', 's2']) near(t[n]!, 3333, 200, n);
});

test('least_conn: the busiest of three servers is never chosen (it always loses its pair)', () => {
  const servers = pool(3);
  for (let i = 0; i < 10; i++) servers[0]!.acquire();
  servers[0]!.remoteActive = 3;
  const policy = new RandomTwoPolicy(snapshot(servers), 'least_conn', false, seededRandom(6));
  const t = tally(picks(policy, 10_000));
  assert.equal(t.s0, undefined, JSON.stringify(t));
  near(t.s1!, 5000, 200, 's1');
});

test('least_time: a slow server gets no picks while measured recently, and one exploring pick once stale', () => {
  const servers = pool(3);
  const policy = new RandomTwoPolicy(snapshot(servers), 'least_time', false, seededRandom(8));
  servers[0]!.watcher!.timing(servers[0]!, 60, false);
  servers[1]!.watcher!.timing(servers[1]!, 5, false);
  servers[2]!.watcher!.timing(servers[2]!, 5, false);
  const now = servers[2]!.peakEwmaAt;
  const t = tally(picks(policy, 10_000, req(undefined, now + 1)));
  assert.equal(t.s0, undefined, JSON.stringify(t));
  near(t.s1!, 5000, 200, 's1');
  const stale = tally(picks(policy, 200 * EXPLORE_EVERY, req(undefined, now + STALE_MS + 1)));
  assert.equal(stale.s0, 1, JSON.stringify(stale));
});

test('retries visit every usable server once', () => {
  const servers = pool(4, { down: [2] });
  const policy = new RandomTwoPolicy(snapshot(servers), 'least_conn', false, seededRandom(9));
  for (let i = 0; i < 20; i++) assert.deepEqual(retrySequence(policy).sort(), ['s0', 's1', 's3']);
});
