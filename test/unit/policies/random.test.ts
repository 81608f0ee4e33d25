/** random: weighted draws (alias table), redrawn for unusable servers. Seeded, so runs are repeatable. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RandomPolicy } from '../../../src/balancer/policies/random.js';
import { seededRandom } from '../../../src/balancer/rng.js';
import { near, picks, pool, retrySequence, snapshot, tally } from './fixtures.js';

test('a seeded pick order is repeatable', () => {
  const a = new RandomPolicy(snapshot(pool(3)), seededRandom(42));
  const b = new RandomPolicy(snapshot(pool(3)), seededRandom(42));
  const order = picks(a, 12);
  assert.deepEqual(picks(b, 12), order);
  assert.equal(new Set(order).size, 3);
});

test('10,000 picks with weights 1,2,3,4 follow the weights (± 2% of the picks)', () => {
  const policy = new RandomPolicy(snapshot(pool(4, { weights: [1, 2, 3, 4] })), seededRandom(1));
  const t = tally(picks(policy, 10_000));
  near(t.s0!, 1000, 200, 's0');
  near(t.s1!, 2000, 200, 's1');
  near(t.s2!, 3000, 200, 's2');
  near(t.s3!, 4000, 200, 's3');
});

test('down servers are never drawn, the others keep their shares (± 2%)', () => {
  const policy = new RandomPolicy(snapshot(pool(3, { down: [0] })), seededRandom(2));
  const t = tally(picks(policy, 10_000));
  assert.equal(t.s0, undefined);
  near(t.s1!, 5000, 200, 's1');
});

test('retries visit every server once, even with skewed weights where draws keep hitting the tried one', () => {
  const policy = new RandomPolicy(snapshot(pool(3, { weights: [1000, 1, 1] })), seededRandom(3));
  for (let i = 0; i < 50; i++) assert.deepEqual(retrySequence(policy).sort(), ['s0', 's1', 's2']);
});
