import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RoundRobinPolicy, smoothWeightedSequence } from '../../src/balancer/policies/round-robin.js';
import type { PickRequest, Tried } from '../../src/balancer/policy.js';
import { ServerState } from '../../src/upstream/server-state.js';
import type { VariableContext } from '../../src/variables/context.js';

function servers(weights: number[], opts: { backup?: number[] } = {}): ServerState[] {
  return weights.map((w, i) => {
    const s = new ServerState('u', `s${i}`, { host: '127.0.0.1', port: 1000 + i });
    s.weight = w;
    s.backup = opts.backup?.includes(i) ?? false;
    return s;
  });
}

const request = (now = 0): PickRequest => ({ vars: {} as VariableContext, now });
const none: Tried = { length: 0, includes: () => false };
const triedOf = (list: ServerState[]): Tried => ({ length: list.length, includes: (s) => list.includes(s) });

function picks(policy: RoundRobinPolicy, n: number, now = 0): string[] {
  return Array.from({ length: n }, () => policy.pick(request(now), none)?.address ?? '-');
}

test('weights 5,1,1 give nginx\'s smooth sequence a a b a c a a', () => {
  assert.deepEqual(smoothWeightedSequence([5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
  const s = servers([5, 1, 1]);
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  assert.deepEqual(picks(policy, 14), ['s0', 's0', 's1', 's0', 's2', 's0', 's0', 's0', 's0', 's1', 's0', 's2', 's0', 's0']);
});

test('equal weights rotate in order; weights are reduced by their gcd', () => {
  assert.deepEqual(smoothWeightedSequence([1, 1, 1]), [0, 1, 2]);
  assert.deepEqual(smoothWeightedSequence([10, 20]), smoothWeightedSequence([1, 2]));
  const policy = new RoundRobinPolicy({ primary: servers([1, 1, 1]), backup: [] });
  assert.deepEqual(picks(policy, 6), ['s0', 's1', 's2', 's0', 's1', 's2']);
});

test('traffic shares follow weights over 10,000 picks', () => {
  const s = servers([3, 2, 1]);
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  const counts = new Map<string, number>();
  for (const name of picks(policy, 10_000)) counts.set(name, (counts.get(name) ?? 0) + 1);
  assert.ok(Math.abs(counts.get('s0')! - 5000) <= 2);
  assert.ok(Math.abs(counts.get('s1')! - 3333) <= 2);
  assert.ok(Math.abs(counts.get('s2')! - 1667) <= 2);
});

test('unavailable servers are skipped and the others keep their order', () => {
  const s = servers([1, 1, 1]);
  s[1]!.configDown = true;
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  assert.deepEqual(picks(policy, 4), ['s0', 's2', 's0', 's2']);
});

test('a failed server (max_fails within fail_timeout) is skipped until fail_timeout passes', () => {
  const s = servers([1, 1]);
  s[0]!.maxFails = 1;
  s[0]!.failTimeoutMs = 1000;
  s[0]!.fails = 1;
  s[0]!.checked = 100;
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  assert.deepEqual(picks(policy, 3, 500), ['s1', 's1', 's1']);
  assert.ok(picks(policy, 2, 1200).includes('s0'));
});

test('retries never return a server already tried for the request', () => {
  const s = servers([1, 1, 1]);
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  const first = policy.pick(request(), none)!;
  const second = policy.pick(request(), triedOf([first]))!;
  const third = policy.pick(request(), triedOf([first, second]))!;
  assert.equal(new Set([first, second, third]).size, 3);
  assert.equal(policy.pick(request(), triedOf([first, second, third])), undefined);
});

test('backup servers are used only when no primary is available', () => {
  const s = servers([1, 1, 1], { backup: [2] });
  const policy = new RoundRobinPolicy({ primary: s.slice(0, 2), backup: s.slice(2) });
  assert.deepEqual(picks(policy, 4), ['s0', 's1', 's0', 's1']);
  s[0]!.configDown = true;
  s[1]!.configDown = true;
  assert.deepEqual(picks(policy, 2), ['s2', 's2']);
});

test('max_conns makes a full server unavailable', () => {
  const s = servers([1, 1]);
  s[0]!.maxConns = 1;
  s[0]!.active = 1;
  const policy = new RoundRobinPolicy({ primary: s, backup: [] });
  assert.deepEqual(picks(policy, 3), ['s1', 's1', 's1']);
});
