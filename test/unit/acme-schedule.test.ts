/**
 * When the ACME client orders and renews (src/tls/acme/manager.ts): a third
 * of the lifetime left by default, backoff after failures, and what makes a
 * stored certificate due now. And the certificate pair checks the watcher
 * and the client share (src/tls/certificate-files.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPair } from '../../src/tls/certificate-files.js';
import { backoffDelay, dueReason, readStored, renewalTime } from '../../src/tls/acme/manager.js';
import { certificateFiles, type AcmeServerSpec } from '../../src/tls/acme/spec.js';
import { makeCA, signCert } from '../support/certs.js';
import { tempDir } from '../support/tmp.js';

const DAY = 86_400_000;

test('renewal when a third of the lifetime remains, or acme_renew_before', () => {
  const from = new Date('2026-01-01T00:00:00Z');
  const to = new Date(from.getTime() + 90 * DAY);
  assert.equal(renewalTime(from, to, undefined), to.getTime() - 30 * DAY);
  assert.equal(renewalTime(from, to, 10 * DAY), to.getTime() - 10 * DAY);
  assert.equal(renewalTime(from, to, 365 * DAY), from.getTime(), 'never before the certificate starts');
  const shortLived = new Date(from.getTime() + 6 * DAY);
  assert.equal(renewalTime(from, shortLived, undefined), from.getTime() + 4 * DAY);
});

test('exponential backoff from min to max, with jitter', () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => backoffDelay(n, 120_000, 12 * 3_600_000, 0.5));
  assert.deepEqual(delays.slice(0, 4), [120_000, 240_000, 480_000, 960_000]);
  assert.equal(delays[9], 12 * 3_600_000, 'capped');
  assert.equal(backoffDelay(1, 1000, 5000, 0), 900);
  assert.equal(backoffDelay(1, 1000, 5000, 1), 1100);
});

test('a stored certificate is due when missing, unusable, for other names or another CA, or near its end', () => {
  const storage = tempDir('fulcrum-acme-due-');
  const spec: AcmeServerSpec = {
    names: ['a.test', 'b.test'],
    lineage: 'a.test',
    directoryUrl: 'https://ca.test/dir',
    email: undefined,
    eab: undefined,
    challenges: ['http-01'],
    keyTypes: ['ecdsa'],
    renewBeforeMs: undefined,
    retryMinMs: 1000,
    retryMaxMs: 2000,
    storage,
    caRoot: undefined,
  };
  const now = Date.now();
  assert.deepEqual(dueReason(spec, readStored(spec, 'ecdsa'), now), { reason: 'no certificate yet', atMs: now });

  const files = certificateFiles(spec, 'ecdsa');
  mkdirSync(files.dir, { recursive: true });
  const ca = makeCA(storage);
  const write = (names: string[], days = 30): void => {
    const c = signCert(ca, storage, { commonName: names[0], altNames: names, days, fileBase: `c${Math.random()}` });
    writeFileSync(files.cert, c.cert);
    writeFileSync(files.key, c.key);
  };
  write(['a.test']);
  assert.match(dueReason(spec, readStored(spec, 'ecdsa'), now).reason, /names missing/);
  write(['a.test', 'b.test']);
  const fresh = dueReason(spec, readStored(spec, 'ecdsa'), now);
  assert.equal(fresh.reason, '');
  const stored = readStored(spec, 'ecdsa').pair!;
  assert.equal(fresh.atMs, renewalTime(stored.notBefore, stored.notAfter, undefined));
  assert.equal(dueReason(spec, readStored(spec, 'ecdsa'), fresh.atMs + 1).reason, 'renewal due');
  writeFileSync(join(files.dir, 'meta.json'), JSON.stringify({ directoryUrl: 'https://other.test/dir' }));
  assert.match(dueReason(spec, readStored(spec, 'ecdsa'), now).reason, /CA .* changed/);
  writeFileSync(files.key, 'garbage');
  assert.match(dueReason(spec, readStored(spec, 'ecdsa'), now).reason, /stored certificate unusable/);
});

test('checkPair: the chain is read, a foreign key is refused, garbage is explained', () => {
  const dir = tempDir('fulcrum-pair-');
  const ca = makeCA(dir);
  const a = signCert(ca, dir, { commonName: 'a.test', keyType: 'rsa' });
  const b = signCert(ca, dir, { commonName: 'b.test' });
  const pair = checkPair(Buffer.from(a.cert + ca.cert), Buffer.from(a.key));
  assert.equal(pair.keyType, 'rsa');
  assert.equal(pair.chain.length, 1);
  assert.equal(pair.chain[0]!.subject, 'CN=Fulcrum Test CA');
  assert.throws(() => checkPair(Buffer.from(a.cert), Buffer.from(b.key)), /does not match/);
  assert.throws(() => checkPair(Buffer.from('nothing'), Buffer.from(a.key)), /no PEM certificate/);
  assert.throws(() => checkPair(Buffer.from(a.cert), Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')), /private key does not parse/);
});
