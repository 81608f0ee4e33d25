/**
 * Smooth weighted round robin as a policy over snapshots: effective weights
 * (slow_start), retries, backups, panic. (test/unit/round-robin.test.ts pins
 * nginx's sequence itself.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RoundRobinPolicy } from '../../../src/balancer/policies/round-robin.js';
import { none, near, picks, pool, req, retrySequence, snapshot, tally, triedOf, vars } from './fixtures.js';

test('10,000 picks with weights 5,3,2 follow the weights exactly (± 1)', () => {
  const policy = new RoundRobinPolicy(snapshot(pool(3, { weights: [5, 3, 2] })));
  const t = tally(picks(policy, 10_000));
  near(t.s0!, 5000, 1, 's0');
  near(t.s1!, 3000, 1, 's1');
  near(t.s2!, 2000, 1, 's2');
});

test('effective weights from the snapshot (slow_start) replace the configured ones', () => {
  const servers = pool(2);
  const policy = new RoundRobinPolicy({ ...snapshot(servers), primaryWeights: [10, 1] });
  assert.deepEqual(picks(policy, 11).filter((n) => n === 's1').length, 1);
  const t = tally(picks(policy, 11_000));
  assert.deepEqual(t, { s0: 10_000, s1: 1000 });
});

test('a retry sequence visits every usable server once, primaries before backups', () => {
  const servers = pool(4, { backup: [3] });
  const policy = new RoundRobinPolicy(snapshot(servers));
  assert.deepEqual(retrySequence(policy), ['s0', 's1', 's2', 's3']);
  assert.equal(policy.pick(req(), none)?.address, 's0');
  assert.deepEqual(retrySequence(policy), ['s1', 's2', 's0', 's3']);
  servers[1]!.configDown = true;
  assert.deepEqual(retrySequence(policy), ['s2', 's0', 's3']);
});

test('unhealthy servers are skipped, and used again in panic mode', () => {
  const servers = pool(3);
  servers[0]!.healthy = false;
  servers[1]!.healthy = false;
  const policy = new RoundRobinPolicy(snapshot(servers));
  assert.deepEqual(picks(policy, 3), ['s2', 's2', 's2']);
  const panic = { vars: vars(), now: 0, panic: true };
  assert.deepEqual(new Set(picks(policy, 3, panic)), new Set(['s0', 's1', 's2']));
  // Panic never overrides the operator: down and drain stay out.
  servers[0]!.configDown = true;
  servers[1]!.drain = true;
  assert.deepEqual(picks(policy, 3, panic), ['s2', 's2', 's2']);
  assert.equal(policy.pick(req(), triedOf([servers[2]!])), undefined);
  assert.equal(policy.pick(req(), none)?.address, 's2');
});
