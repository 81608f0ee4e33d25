/** slow_start: a recovered (or new, or re-enabled) server's weight ramps from ~0 to full in SLOW_START_STEPS steps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { roundRobin } from '../../src/balancer/policies/round-robin.js';
import { UpstreamServer } from '../../src/config/schema.js';
import { emitHealthEvent } from '../../src/health/passive.js';
import { SLOW_START_STEPS, UpstreamGroup } from '../../src/upstream/group.js';
import { ServerState } from '../../src/upstream/server-state.js';

const limits = { maxIdle: 0, idleTimeoutMs: 1000, maxRequests: 100, maxLifetimeMs: 1000 };

function group(n: number, slowStart: string) {
  const states = Array.from({ length: n }, (_, i) => new ServerState('ss', `s${i}`, { host: '127.0.0.1', port: 2000 + i }));
  const params = states.map((s) => UpstreamServer.parse({ address: s.address, slow_start: slowStart }));
  const g = new UpstreamGroup('ss', states, params, limits, roundRobin, false, undefined);
  g.activate();
  return { g, states };
}

test('the effective weight ramps linearly in steps from 1/10 of the weight to all of it', () => {
  const { g, states } = group(2, '10s');
  const s = states[0]!;
  s.weight = 3;
  s.recoveredAt = 1000;
  const full = 3 * SLOW_START_STEPS;
  assert.equal(g.effectiveWeight(s, 1000), 1);
  assert.equal(g.effectiveWeight(s, 6000), Math.ceil(full / 2));
  assert.equal(g.effectiveWeight(s, 10_999), full);
  assert.equal(g.effectiveWeight(s, 11_000), full);
  assert.equal(g.effectiveWeight(states[1]!, 1000), SLOW_START_STEPS);
  g.retire();
});

test('a server coming back up ramps: the snapshot carries its lowered weight until the ramp ends', async () => {
  const { g, states } = group(2, '400ms');
  assert.equal(g.snapshot.primaryWeights, undefined);
  emitHealthEvent({ server: states[1]!, state: 'up', source: 'active', reason: 'test', at: performance.now(), remote: true });
  const [w0, w1] = g.snapshot.primaryWeights!;
  assert.equal(w0, SLOW_START_STEPS);
  assert.ok(w1! < 3, `starts low: ${w1}`);
  await new Promise((r) => setTimeout(r, 220));
  const mid = g.snapshot.primaryWeights![1]!;
  assert.ok(mid >= 4 && mid <= 8, `half way: ${mid}`);
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(g.snapshot.primaryWeights, undefined, 'back to plain weights once ramped');
  g.retire();
});

test('a server back from `down`, and a new server added after the first configuration, ramp too', () => {
  const { g, states } = group(2, '10s');
  const params = UpstreamServer.parse({ address: 's1', slow_start: '10s', down: true });
  states[1]!.applyConfig(params);
  states[1]!.applyConfig({ ...params, down: false });
  g.refresh();
  assert.ok(g.snapshot.primaryWeights![1]! < SLOW_START_STEPS);
  g.rampNewServers = true;
  const added = new ServerState('ss', 's9', { host: '127.0.0.1', port: 2009 });
  added.applyConfig(UpstreamServer.parse({ address: 's9', slow_start: '10s' }));
  g.setServers([...states, added]);
  assert.ok(g.snapshot.primaryWeights![2]! < SLOW_START_STEPS);
  g.retire();
});
