/**
 * The worker side of spreading connections (src/lifecycle/connection-spread.ts):
 * which accepted connections a worker passes to a sibling. The hand-over
 * itself, through the supervisor, is tested with real workers in
 * test/integration/ops-workers.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SiblingConnections } from '../../src/lifecycle/connection-spread.js';

/** Accepts `n` connections in one burst in a worker that starts with `mine`; returns [kept, handed by sibling id]. */
function burst(siblings: SiblingConnections, n: number, mine = 0, limit = 1024): [number, Map<number, number>] {
  const handed = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const to = siblings.handOverTo(mine, limit);
    if (to === undefined) mine++;
    else handed.set(to, (handed.get(to) ?? 0) + 1);
  }
  return [mine, handed];
}

test('without reports from siblings a worker keeps every connection', () => {
  const [kept, handed] = burst(new SiblingConnections(), 50);
  assert.equal(kept, 50);
  assert.equal(handed.size, 0);
});

test('a burst that lands on one worker is shared with an idle sibling, counting what was handed since its last report', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 0]]);
  const [kept, handed] = burst(siblings, 200);
  assert.equal(kept + (handed.get(2) ?? 0), 200);
  // 1.5x the sibling's share plus 8 at most: 200 -> 125/75.
  assert.ok(kept <= 1.5 * handed.get(2)! + 9, `${kept} kept, ${handed.get(2)} handed`);
  assert.ok(handed.get(2)! >= 70, `${handed.get(2)} handed`);
});

test('small imbalances stay where they are', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 20]]);
  const [kept, handed] = burst(siblings, 10, 20);
  assert.equal(kept, 30);
  assert.equal(handed.size, 0);
});

test('the sibling with the fewest gets the connection; a sibling at worker_connections gets none', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 100], [3, 10], [4, 5]]);
  assert.equal(siblings.handOverTo(200, 1024), 4);
  siblings.update([[2, 100], [3, 10], [4, 64]]);
  assert.equal(siblings.handOverTo(200, 64), 3, 'worker 4 is full');
  siblings.update([[2, 64]]);
  assert.equal(siblings.handOverTo(200, 64), undefined, 'the only sibling is full');
});

test('a worker at worker_connections hands every new connection to a sibling with room', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 60]]);
  assert.equal(siblings.handOverTo(64, 64), 2, 'full: the sibling has room, however small the difference');
  assert.equal(siblings.handOverTo(63, 64), undefined, 'not full, and within the slack');
  siblings.update([[2, 64]]);
  assert.equal(siblings.handOverTo(64, 64), undefined, 'both full: the worker refuses it itself');
});

test('connections handed over stop counting after 250 ms without a report (a burst that came and went between reports)', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 0]]);
  let handed = 0;
  for (let mine = 0; mine < 40; ) {
    if (siblings.handOverTo(mine, 1024, 1000) === undefined) mine++;
    else handed++;
  }
  assert.ok(handed >= 12, `${handed} handed in the first burst`);
  // The next burst, 400 ms later, with no report in between: the sibling is at 0 again, not at `handed`.
  assert.equal(siblings.handOverTo(9, 1024, 1400), 2);
  assert.equal(siblings.handOverTo(9, 1024, 1401), undefined, 'now counting the one just handed');
});

test('a new report replaces the estimates', () => {
  const siblings = new SiblingConnections();
  siblings.update([[2, 0]]);
  burst(siblings, 40);
  siblings.update([[2, 100]]);
  assert.equal(siblings.handOverTo(60, 1024), undefined);
});
