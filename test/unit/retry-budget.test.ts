/** The retry budget: retries to an upstream may add at most percent% of its recent requests (plus min per second). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget } from '../../src/upstream/retry-budget.js';
import { ServerState } from '../../src/upstream/server-state.js';

function servers(): ServerState[] {
  return [new ServerState('rb', 'a', { host: '127.0.0.1', port: 1 }), new ServerState('rb', 'b', { host: '127.0.0.1', port: 2 })];
}

/** n first attempts spread over the servers. */
function requests(list: ServerState[], n: number): void {
  for (let i = 0; i < n; i++) list[i % list.length]!.requests++;
}

/** One retry, counted as the exchange counts it when allowed. */
function retry(budget: RetryBudget, list: ServerState[], now: number): boolean {
  if (!budget.allow(now, list)) return false;
  list[0]!.requests++;
  list[0]!.retries++;
  return true;
}

test('20% of 100 recent requests: 20 retries pass, the 21st does not', () => {
  const list = servers();
  const budget = new RetryBudget({ percent: 20, min: 0, window: 10_000 });
  budget.sample(0, list);
  requests(list, 100);
  let allowed = 0;
  for (let i = 0; i < 30; i++) if (retry(budget, list, 5000)) allowed++;
  assert.equal(allowed, 20);
  assert.equal(budget.denied, 10);
  assert.equal(budget.deniedAt, 5000);
});

test('the window slides: requests older than the window stop paying for retries', () => {
  const list = servers();
  const budget = new RetryBudget({ percent: 50, min: 0, window: 10_000 });
  for (let t = 0; t <= 10_000; t += 1000) budget.sample(t, list);
  requests(list, 10);
  for (let t = 11_000; t <= 22_000; t += 1000) budget.sample(t, list);
  assert.equal(retry(budget, list, 22_500), false, 'the 10 requests are more than a window old');
  requests(list, 4);
  assert.equal(retry(budget, list, 22_600), true);
  assert.equal(retry(budget, list, 22_700), true);
  assert.equal(retry(budget, list, 22_800), false);
});

test('min retries per second are allowed whatever the traffic', () => {
  const list = servers();
  const budget = new RetryBudget({ percent: 10, min: 3, window: 10_000 });
  budget.sample(0, list);
  let allowed = 0;
  for (let i = 0; i < 10; i++) if (retry(budget, list, 500)) allowed++;
  assert.equal(allowed, 3);
});
