/**
 * Session ticket keys (src/tls/context.ts): derived from one secret, so two
 * processes (workers, a binary upgrade's new process) decrypt each other's
 * tickets; a ticket from the period before still decrypts after a rotation,
 * one older does not; a decrypted ticket asks OpenSSL for a fresh one (2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TicketKeys, TICKET_KEY_SEED_ENV } from '../../src/tls/context.js';

const HOUR = 3_600_000;

test('two processes with the same secret share keys; the previous period still decrypts, older and unknown names do not', () => {
  process.env[TICKET_KEY_SEED_ENV] = randomBytes(32).toString('hex');
  const a = new TicketKeys([], HOUR);
  const b = new TicketKeys([], HOUR);
  try {
    const t0 = 1_800_000_000_000;
    const made = a.onTicketKey(Buffer.alloc(16), true, t0);
    assert.equal(made[0], 1);
    const name = made[3]!;
    const read = b.onTicketKey(name, false, t0);
    assert.equal(read[0], 2, 'the other process decrypts it, and renews it');
    assert.deepEqual([read[1], read[2]], [made[1], made[2]], 'with the same HMAC and AES keys');
    assert.equal(b.onTicketKey(name, false, t0 + HOUR)[0], 2, 'after a rotation');
    assert.equal(b.onTicketKey(name, false, t0 + 2 * HOUR)[0], 0, 'two periods later: a full handshake');
    assert.notDeepEqual(a.onTicketKey(Buffer.alloc(16), true, t0 + HOUR)[3], name, 'the next period encrypts with a new key');
    assert.equal(b.onTicketKey(randomBytes(16), false, t0)[0], 0, 'an unknown key name');
  } finally {
    a.stop();
    b.stop();
  }
});

test('another secret gives other keys', () => {
  process.env[TICKET_KEY_SEED_ENV] = randomBytes(32).toString('hex');
  const a = new TicketKeys([], HOUR);
  process.env[TICKET_KEY_SEED_ENV] = randomBytes(32).toString('hex');
  const b = new TicketKeys([], HOUR);
  try {
    const name = a.onTicketKey(Buffer.alloc(16), true, 1_800_000_000_000)[3]!;
    assert.equal(b.onTicketKey(name, false, 1_800_000_000_000)[0], 0);
  } finally {
    a.stop();
    b.stop();
  }
});
