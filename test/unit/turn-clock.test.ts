import assert from 'node:assert/strict';
import { test } from 'node:test';
import { turnEpochMs, turnNow } from '../../src/net/turn-clock.js';

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: the same turn goes on
  }
}

test('one reading per event-loop turn, fresh again in the next turn and after waiting for I/O or a timer', async () => {
  const first = turnNow();
  const firstEpoch = turnEpochMs();
  busyWait(5);
  assert.equal(turnNow(), first, 'the same turn reads the same time');
  assert.equal(turnEpochMs(), firstEpoch);
  await new Promise((resolve) => setImmediate(resolve));
  const next = turnNow();
  assert.ok(next >= first + 5, `the next turn reads the clock again (${next - first} ms later)`);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(turnNow() >= next + 25, 'a wait never leaves the reading stale');
  assert.ok(Math.abs(turnEpochMs() - Date.now()) < 20, 'the epoch reading is the wall clock of this turn');
});
