/**
 * least_conn: fewest requests in flight per weight (every worker's:
 * active + remoteActive), ties in weighted round-robin order, kept in a heap
 * that follows load changes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeastConnPolicy } from '../../../src/balancer/policies/least-conn.js';
import { seededRandom } from '../../../src/balancer/rng.js';
import { none, near, picks, pool, req, retrySequence, snapshot, tally } from './fixtures.js';

test('idle servers of equal weight take turns: s0 s1 s2 s0 s1 s2', () => {
  const policy = new LeastConnPolicy(snapshot(pool(3)));
  assert.deepEqual(picks(policy, 6), ['s0', 's1', 's2', 's0', 's1', 's2']);
});

test('idle servers with weights 3,1 share ties 3:1 in smooth order', () => {
  const policy = new LeastConnPolicy(snapshot(pool(2, { weights: [3, 1] })));
  assert.deepEqual(picks(policy, 8), ['s0', 's1', 's0', 's0', 's0', 's1', 's0', 's0']);
  const t = tally(picks(policy, 10_000));
  near(t.s0!, 7500, 2, 's0');
});

test('the server with the fewest requests in flight wins, and follows acquire/release', () => {
  const servers = pool(3);
  const policy = new LeastConnPolicy(snapshot(servers));
  servers[0]!.acquire();
  servers[0]!.acquire();
  servers[2]!.acquire();
  assert.equal(policy.pick(req(), none)?.address, 's1');
  servers[1]!.acquire();
  servers[1]!.acquire();
  servers[1]!.acquire();
  assert.equal(policy.pick(req(), none)?.address, 's2');
  servers[0]!.release();
  servers[0]!.release();
  assert.equal(policy.pick(req(), none)?.address, 's0');
});

test('held requests spread by weight: 30 picks that stay in flight on weights 2,1 give 20 and 10', () => {
  const servers = pool(2, { weights: [2, 1] });
  const policy = new LeastConnPolicy(snapshot(servers));
  for (let i = 0; i < 30; i++) policy.pick(req(), none)!.acquire();
  assert.deepEqual([servers[0]!.active, servers[1]!.active], [20, 10]);
});

test('requests in flight in other workers (remoteActive) count, and re-sort the heap when they change', () => {
  const servers = pool(2);
  const policy = new LeastConnPolicy(snapshot(servers));
  servers[0]!.remoteActive = 5;
  assert.deepEqual(picks(policy, 3), ['s1', 's1', 's1']);
  servers[0]!.remoteActive = 0;
  servers[1]!.remoteActive = 1;
  assert.deepEqual(picks(policy, 2), ['s0', 's0']);
});

test('10,000 requests with random durations: a server twice as heavy carries twice the load (± 5%)', () => {
  const servers = pool(3, { weights: [2, 1, 1] });
  const policy = new LeastConnPolicy(snapshot(servers));
  const rand = seededRandom(7);
  const inFlight: { s: (typeof servers)[number]; until: number }[] = [];
  const served = new Map<string, number>();
  for (let t = 0; t < 10_000; t++) {
    for (let i = inFlight.length - 1; i >= 0; i--) if (inFlight[i]!.until <= t) inFlight.splice(i, 1)[0]!.s.release();
    const s = policy.pick(req(), none)!;
    s.acquire();
    served.set(s.address, (served.get(s.address) ?? 0) + 1);
    inFlight.push({ s, until: t + 1 + Math.floor(rand() * 20) });
  }
  near(served.get('s0')! / 10_000, 0.5, 0.05, 's0 share');
  near(served.get('s1')! / 10_000, 0.25, 0.05, 's1 share');
});

test('down, failed and full servers are skipped; backups only when no primary is usable; retries never repeat', () => {
  const servers = pool(4, { backup: [3] });
  const policy = new LeastConnPolicy(snapshot(servers));
  servers[0]!.maxConns = 1;
  servers[0]!.acquire();
  servers[1]!.fails = 1;
  servers[1]!.checked = 0; // failed at time 0, as noteFailure records it
  servers[1]!.maxFails = 1;
  servers[1]!.failTimeoutMs = 1000;
  assert.deepEqual(picks(policy, 3), ['s2', 's2', 's2']);
  assert.deepEqual(retrySequence(policy), ['s2', 's3']);
  servers[2]!.configDown = true;
  assert.deepEqual(picks(policy, 2), ['s3', 's3']);
  servers[0]!.release();
  assert.deepEqual(retrySequence(policy), ['s0', 's3']);
});

test('a retry takes the next least loaded server, never the same one', () => {
  const servers = pool(5);
  const policy = new LeastConnPolicy(snapshot(servers));
  servers.forEach((s, i) => {
    for (let k = 0; k < 5 - i; k++) s.acquire();
  });
  assert.deepEqual(retrySequence(policy), ['s4', 's3', 's2', 's1', 's0']);
});
