/** Panic mode: below the threshold of healthy servers, balance over all (not down/drained) servers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PanicGuard, PanicState } from '../../../src/balancer/panic.js';
import type { BalancingPolicy, ServerSnapshot } from '../../../src/balancer/policy.js';
import { LeastConnPolicy } from '../../../src/balancer/policies/least-conn.js';
import { RoundRobinPolicy } from '../../../src/balancer/policies/round-robin.js';
import { emitHealthEvent } from '../../../src/health/passive.js';
import { none, picks, pool, req, snapshot, tally } from './fixtures.js';

function guard(servers: ReturnType<typeof pool>, threshold: number, inner: new (s: ServerSnapshot) => BalancingPolicy = RoundRobinPolicy) {
  const snap = snapshot(servers);
  const state = new PanicState('u', threshold);
  return { policy: new PanicGuard(snap, new inner(snap), state), state };
}

const markDown = (s: ReturnType<typeof pool>[number]): void => {
  s.healthy = false;
  emitHealthEvent({ server: s, state: 'down', source: 'active', reason: 'test', at: 0, remote: true });
};

test('with 1 of 4 healthy and a 50% threshold, all 4 share the traffic; at 2 of 4 only the healthy ones', () => {
  const servers = pool(4);
  const { policy, state } = guard(servers, 50);
  markDown(servers[0]!);
  markDown(servers[1]!);
  assert.deepEqual(tally(picks(policy, 8)), { s2: 4, s3: 4 });
  assert.equal(state.panicking, false);
  markDown(servers[2]!);
  assert.deepEqual(tally(picks(policy, 8)), { s0: 2, s1: 2, s2: 2, s3: 2 });
  assert.equal(state.panicking, true);
  assert.match(policy.explain(servers[0]!, req()), /^panic mode \(1\/4 healthy < 50%\)/);
});

test('passive failures count as unhealthy; down and draining servers stay out even in panic', () => {
  const servers = pool(4);
  const { policy } = guard(servers, 60, LeastConnPolicy);
  servers[0]!.configDown = true;
  servers[1]!.drain = true;
  servers[2]!.maxFails = 1;
  servers[2]!.fails = 1;
  servers[2]!.checked = 0; // failed at time 0, as noteFailure records it
  servers[2]!.failTimeoutMs = 10_000;
  markDown(servers[3]!); // eligible: s2, s3; healthy: none
  assert.deepEqual(new Set(picks(policy, 6)), new Set(['s2', 's3']));
});

test('off (nginx): 0 threshold never panics; no usable server means no pick', () => {
  const servers = pool(2);
  const { policy } = guard(servers, 0);
  markDown(servers[0]!);
  markDown(servers[1]!);
  assert.equal(policy.pick(req(), none), undefined);
});

test('an available backup server is used before panicking', () => {
  const servers = pool(3, { backup: [2] });
  const { policy, state } = guard(servers, 50);
  markDown(servers[0]!);
  markDown(servers[1]!);
  assert.deepEqual(picks(policy, 3), ['s2', 's2', 's2']);
  assert.equal(state.panicking, false);
  markDown(servers[2]!);
  assert.deepEqual(new Set(picks(policy, 4)), new Set(['s0', 's1']));
});
