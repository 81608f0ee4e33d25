import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NameSet } from '../../src/http/name-set.js';

test('NameSet answers like a Set for names of every length, including fresh strings and ones longer than any member', () => {
  const members = ['te', 'x-pad', 'upgrade', 'trailer', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'te'];
  const set = new NameSet(members);
  const reference = new Set(members);
  assert.equal(set.size, reference.size, 'duplicates count once');
  const probes = [...members, '', 't', 'tf', 'x-paD', 'connections', 'keep_alive', 'content-type', 'a'.repeat(300)];
  for (const probe of probes) {
    const fresh = ` ${probe}`.slice(1); // a new string, as parsed heads give
    assert.equal(set.has(fresh), reference.has(probe), probe);
  }
  assert.equal(new NameSet([]).has('x'), false);
});

test('NameSet.hasIgnoringCase finds a name inside a head in any case, and only the whole name', () => {
  const set = new NameSet(['server', 'date', 'x-pad', 'connection']);
  const head = 'HTTP/1.1 200 OK\r\nSERVER: a\r\nDate: b\r\nX-Pad: c\r\nX-Padding: d\r\nConnections: e\r\nContent-Type: f';
  const verdicts = head
    .split('\r\n')
    .slice(1)
    .map((line) => {
      const start = head.indexOf(line);
      return set.hasIgnoringCase(head, start, start + line.indexOf(':'));
    });
  assert.deepEqual(verdicts, [true, true, true, false, false, false]);
  assert.equal(set.hasIgnoringCase('x'.repeat(400), 0, 400), false, 'longer than any member');
});
