/**
 * The certificate file watcher (src/tls/certificate-files.ts): a new good
 * pair is handed to every user; a broken one is not, and the previous pair
 * stays current; a pair is read once however many users share it.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CertificateWatcher, type LoadedPair } from '../../src/tls/certificate-files.js';
import { makeCA, signCert } from '../support/certs.js';
import { tempDir } from '../support/tmp.js';
import { sleep } from '../support/wait.js';

test('a replaced pair is handed over; a broken one is refused and the previous stays', async () => {
  const dir = tempDir('fulcrum-watcher-');
  const ca = makeCA(dir);
  const one = signCert(ca, dir, { commonName: 'w.test', fileBase: 'one' });
  const two = signCert(ca, dir, { commonName: 'w.test', fileBase: 'two' });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  copyFileSync(one.certPath, cert);
  copyFileSync(one.keyPath, key);

  const watcher = new CertificateWatcher();
  const seenA: LoadedPair[] = [];
  const seenB: LoadedPair[] = [];
  const a = watcher.acquire(cert, key, 'file', (p) => seenA.push(p));
  const b = watcher.acquire(cert, key, 'file', (p) => seenB.push(p));
  assert.equal(a.pair, b.pair, 'one watch per pair');
  const first = a.pair.current!.fingerprint;

  // Same content rewritten: no change handed out.
  writeFileSync(cert, one.cert);
  watcher.checkAll();
  assert.equal(seenA.length, 0);

  // A key that does not match yet (a writer between the two files), then the matching certificate.
  writeFileSync(key, two.key);
  watcher.checkAll();
  writeFileSync(cert, two.cert + '\n');
  await sleep(20);
  watcher.checkAll();
  assert.equal(seenA.length, 1);
  assert.equal(seenB.length, 1);
  assert.notEqual(seenA[0]!.fingerprint, first);
  assert.equal(a.pair.problem, '');

  // Broken: refused after the recheck, the previous pair stays current.
  writeFileSync(cert, 'garbage');
  watcher.checkAll();
  await sleep(700);
  assert.equal(seenA.length, 1);
  assert.equal(a.pair.current!.fingerprint, seenA[0]!.fingerprint);
  assert.match(a.pair.problem, /no PEM certificate/);

  a.release();
  b.release();
});
