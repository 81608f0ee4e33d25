/**
 * Read buffers lent to writes, and copies written from pooled buffers, come
 * back to the free list once the writer has nothing pending, and never
 * before (a buffer reused while a write points at it would corrupt the
 * bytes on the wire: test/integration/relay-buffers.test.ts checks that end
 * to end). Memory: without this every such buffer waited for a full GC.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadBufferChoice, WriteCopies } from '../../src/net/read-buffers.js';

const shared = Buffer.alloc(65536);

/** The buffer the free list hands out next (through a connection that starts a body). */
function nextFreeBuffer(): ArrayBufferLike {
  const choice = new ReadBufferChoice(shared);
  choice.useOwn();
  const buffer = choice.next();
  return buffer.buffer;
}

test('a large copy for a write comes from the free list and goes back only after writesDone()', () => {
  const copies = new WriteCopies();
  const data = Buffer.alloc(40000, 7);
  const copy = copies.copy(data);
  assert.deepEqual(copy, data);
  assert.notEqual(copy.buffer, data.buffer);
  assert.notEqual(nextFreeBuffer(), copy.buffer, 'handed out again while a write may point at it');
  copies.writesDone();
  assert.equal(nextFreeBuffer(), copy.buffer, 'back on the free list once the writes are done');
  const small = copies.copy(Buffer.from('small'));
  assert.equal(small.toString(), 'small');
});

test('a read buffer kept by a write goes back after writesDone(), and to the GC if the body ends first', () => {
  const choice = new ReadBufferChoice(shared);
  choice.useOwn();
  const lent = choice.next().buffer;
  choice.keep(); // a write still points at it: reads move to another buffer
  assert.notEqual(choice.next().buffer, lent);
  assert.notEqual(nextFreeBuffer(), lent);
  choice.writesDone();
  assert.equal(nextFreeBuffer(), lent);

  const other = new ReadBufferChoice(shared);
  other.useOwn();
  const kept = other.next().buffer;
  other.keep();
  other.useShared(true); // whether its write is done is unknown now
  other.writesDone();
  for (let i = 0; i < 70; i++) assert.notEqual(nextFreeBuffer(), kept);
});

test('a connection remembers at most 16 lent buffers for the free list: with writes that never report done, the rest are left to the GC', () => {
  const choice = new ReadBufferChoice(shared);
  choice.useOwn();
  const lent: ArrayBufferLike[] = [];
  for (let i = 0; i < 20; i++) {
    lent.push(choice.next().buffer);
    choice.keep();
  }
  choice.writesDone();
  const handedOut = new Set<ArrayBufferLike>();
  for (let i = 0; i < 16; i++) handedOut.add(nextFreeBuffer());
  for (const buffer of lent.slice(4)) assert.ok(handedOut.has(buffer), 'the 16 newest come back');
  for (const buffer of lent.slice(0, 4)) assert.ok(!handedOut.has(buffer), 'the 4 oldest were dropped');
});
