import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noteFailure, noteSelected, noteSuccess, onHealthEvent, type HealthEvent } from '../../src/health/passive.js';
import { ServerState } from '../../src/upstream/server-state.js';

function server(maxFails = 3, failTimeoutMs = 30_000): ServerState {
  const s = new ServerState('backend_servers', 'b1:8080', { host: 'b1', port: 8080 });
  s.maxFails = maxFails;
  s.failTimeoutMs = failTimeoutMs;
  return s;
}

test('max_fails=3 fail_timeout=30s: three failures take the server out for 30 s', () => {
  const s = server();
  const events: HealthEvent[] = [];
  const off = onHealthEvent((e) => events.push(e));
  try {
    let now = 1000;
    for (let i = 0; i < 2; i++) {
      noteSelected(s, now);
      noteFailure(s, now, 'connect refused');
      now += 100;
    }
    assert.equal(s.isAvailable(now), true, 'two failures are not enough');
    noteSelected(s, now);
    noteFailure(s, now, 'connect refused');
    assert.equal(s.isAvailable(now), false);
    assert.equal(s.isAvailable(now + 30_000), false, 'still out at exactly fail_timeout');
    assert.equal(s.isAvailable(now + 30_001), true, 'back after fail_timeout');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.state, 'down');
  } finally {
    off();
  }
});

test('after fail_timeout the server gets one trial request; a failure takes it out again', () => {
  const s = server(3, 1000);
  for (let i = 0; i < 3; i++) noteFailure(s, 0, 'x');
  const later = 1500;
  assert.equal(s.isAvailable(later), true);
  noteSelected(s, later); // the trial starts a new window
  assert.equal(s.isAvailable(later), false, 'others wait for the trial');
  noteFailure(s, later + 10, 'x');
  assert.equal(s.isAvailable(later + 500), false);
  assert.equal(s.isAvailable(later + 1011), true);
});

test('a successful trial restores the server and resets its failures', () => {
  const s = server(3, 1000);
  for (let i = 0; i < 3; i++) noteFailure(s, 0, 'x');
  noteSelected(s, 1500);
  noteSuccess(s, 1510);
  assert.equal(s.fails, 0);
  assert.equal(s.isAvailable(1510), true);
});

test('successes inside fail_timeout do not reset the count (nginx counts failures per window)', () => {
  const s = server(3, 10_000);
  noteSelected(s, 0);
  noteFailure(s, 0, 'x');
  noteSelected(s, 100);
  noteSuccess(s, 100);
  noteFailure(s, 200, 'x');
  noteSuccess(s, 300);
  noteFailure(s, 400, 'x');
  assert.equal(s.isAvailable(400), false);
});

test('a success after a quiet fail_timeout window resets the count', () => {
  const s = server(3, 1000);
  noteFailure(s, 0, 'x');
  noteFailure(s, 100, 'x');
  noteSelected(s, 2000); // new window: checked > accessed
  noteSuccess(s, 2000);
  assert.equal(s.fails, 0);
});

test('the single server of a group is never marked down; max_fails=0 disables counting', () => {
  const single = server(1, 1000);
  single.single = true;
  noteFailure(single, 0, 'x');
  assert.equal(single.isAvailable(1), true);
  const unlimited = server(0, 1000);
  for (let i = 0; i < 10; i++) noteFailure(unlimited, 0, 'x');
  assert.equal(unlimited.isAvailable(1), true);
});
