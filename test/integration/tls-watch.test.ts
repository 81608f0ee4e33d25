/**
 * Certificate files watched on disk, with two workers and no reload:
 *
 *  - certbot's layout (live/NAME/fullchain.pem and privkey.pem are symlinks
 *    into archive/NAME/, swapped on renewal): the next handshake gets the
 *    new certificate within seconds; a connection opened before keeps
 *    working;
 *  - a corrupt certificate, and a key that does not match, are reported and
 *    the previous certificate stays; fixing the files is picked up;
 *  - files rewritten in place are picked up too;
 *  - a certificate that does not exist at start (certbot has not run yet)
 *    is served as soon as it appears, a temporary self-signed one before.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { makeCA, signCert, type CertFiles } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts } from '../support/ports.js';
import { isSelfSigned, probe } from '../support/tls-probe.js';
import { tempDir } from '../support/tmp.js';
import { waitUntil } from '../support/wait.js';

let fulcrum: FulcrumProcess;
let port: number;
let dir: string;
let ca: CertFiles;
let live: string;
let archive: string;
let plainDir: string;
let lateDir: string;
let serial = 0;

const fp = (c: { cert: string }): string => new X509Certificate(c.cert).fingerprint256;

function newCert(name: string, keyType: 'ec' | 'rsa' = 'ec'): CertFiles {
  return signCert(ca, tempDir('fulcrum-watch-gen-'), { commonName: name, keyType, fileBase: `${name}-${++serial}` });
}

/** certbot's renewal: new files in archive/, then each live/ symlink replaced by a rename. */
function certbotRenew(cert: { certPath: string; keyPath: string }): void {
  const n = ++serial;
  copyFileSync(cert.certPath, join(archive, `fullchain${n}.pem`));
  copyFileSync(cert.keyPath, join(archive, `privkey${n}.pem`));
  for (const [link, target] of [
    ['fullchain.pem', `fullchain${n}.pem`],
    ['privkey.pem', `privkey${n}.pem`],
  ] as const) {
    const tmp = join(live, `${link}.tmp`);
    symlinkSync(join('..', '..', 'archive', 'a.test', target), tmp);
    renameSync(tmp, join(live, link));
  }
}

async function waitServed(name: string, fingerprint: string): Promise<number> {
  const t0 = Date.now();
  // Several handshakes in a row must all present it: the kernel spreads them over both workers.
  await waitUntil(async () => {
    for (let i = 0; i < 6; i++) if ((await probe(port, { servername: name })).fingerprint !== fingerprint) return false;
    return true;
  }, { timeoutMs: 6000, intervalMs: 20, description: `${name} served ${fingerprint}` });
  return Date.now() - t0;
}

before(async () => {
  dir = tempDir('fulcrum-watch-');
  ca = makeCA(dir);
  live = join(dir, 'letsencrypt', 'live', 'a.test');
  archive = join(dir, 'letsencrypt', 'archive', 'a.test');
  plainDir = join(dir, 'plain');
  lateDir = join(dir, 'late');
  for (const d of [live, archive, plainDir]) mkdirSync(d, { recursive: true });
  certbotRenew(newCert('a.test'));
  const b = newCert('b.test');
  copyFileSync(b.certPath, join(plainDir, 'b.crt'));
  copyFileSync(b.keyPath, join(plainDir, 'b.key'));
  [port] = (await freePorts(1)) as [number];
  fulcrum = await startFulcrum({
    dir,
    config: `
worker_processes 2;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl default_server;
    server_name a.test;
    ssl_certificate ${join(live, 'fullchain.pem')};
    ssl_certificate_key ${join(live, 'privkey.pem')};
    location / { return 200 "a\\n"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name b.test;
    ssl_certificate ${join(plainDir, 'b.crt')};
    ssl_certificate_key ${join(plainDir, 'b.key')};
    location / { return 200 "b\\n"; }
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name late.test;
    ssl_certificate ${join(lateDir, 'fullchain.pem')};
    ssl_certificate_key ${join(lateDir, 'privkey.pem')};
    location / { return 200 "late\\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
});

test('certificate files replaced on disk are served on the next handshakes, without a reload', { timeout: 40_000 }, async (t) => {
  const first = await probe(port, { servername: 'a.test', ca: ca.cert, rejectUnauthorized: true });
  assert.equal(first.ok, true, first.error);

  // A keep-alive connection opened on the first certificate.
  const kept = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca: ca.cert });
  await new Promise((resolve, reject) => kept.once('secureConnect', resolve).once('error', reject));
  const keptFingerprint = kept.getPeerX509Certificate()!.fingerprint256;
  const ask = (): Promise<string> =>
    new Promise((resolve) => {
      kept.once('data', (d: Buffer) => resolve(d.toString()));
      kept.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    });
  assert.match(await ask(), /^HTTP\/1\.1 200 [\s\S]*\r\n\r\na\n$/);

  await t.test("certbot's symlink swap is served within seconds; the open connection keeps working", async () => {
    const renewed = newCert('a.test');
    const t0 = Date.now();
    certbotRenew(renewed);
    const ms = await waitServed('a.test', fp(renewed));
    t.diagnostic(`served by both workers ${Date.now() - t0} ms after the symlinks were swapped (${ms} ms of polling)`);
    const p = await probe(port, { servername: 'a.test', ca: ca.cert, rejectUnauthorized: true });
    assert.equal(p.authorized, true);
    assert.match(await ask(), /^HTTP\/1\.1 200 [\s\S]*\r\n\r\na\n$/, 'the connection opened before still works');
    assert.equal(kept.destroyed, false);
    assert.notEqual(keptFingerprint, fp(renewed), 'it was opened on the previous certificate');
    assert.equal(fulcrum.logs.filter((e) => e.msg === 'reloaded').length, 0);
    // No SNI: the default server's certificate changed too.
    assert.equal((await probe(port, {})).fingerprint, fp(renewed));
  });

  await t.test('a corrupt certificate is refused and the previous one stays', async () => {
    const current = (await probe(port, { servername: 'a.test' })).fingerprint!;
    const good = newCert('a.test');
    const broken = tempDir('fulcrum-watch-broken-');
    writeFileSync(join(broken, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    const from = fulcrum.logs.length;
    certbotRenew({ certPath: join(broken, 'cert.pem'), keyPath: good.keyPath });
    const logged = await fulcrum.waitForLog((e) => e.msg === 'certificate files invalid: keeping the previous certificate', 5000, from);
    assert.match(String(logged.problem), /parse|certificate/i);
    for (let i = 0; i < 6; i++) assert.equal((await probe(port, { servername: 'a.test' })).fingerprint, current);
  });

  await t.test('a key that does not match is refused and the previous one stays; good files are then picked up', async () => {
    const current = (await probe(port, { servername: 'a.test' })).fingerprint!;
    const one = newCert('a.test');
    const other = newCert('a.test');
    const from = fulcrum.logs.length;
    certbotRenew({ certPath: one.certPath, keyPath: other.keyPath });
    const logged = await fulcrum.waitForLog((e) => e.msg === 'certificate files invalid: keeping the previous certificate', 5000, from);
    assert.match(String(logged.problem), /does not match/);
    assert.equal((await probe(port, { servername: 'a.test' })).fingerprint, current);
    certbotRenew(one);
    await waitServed('a.test', fp(one));
  });

  await t.test('files rewritten in place (RSA replacing ECDSA) are picked up', async () => {
    const b2 = newCert('b.test', 'rsa');
    writeFileSync(join(plainDir, 'b.key'), b2.key);
    writeFileSync(join(plainDir, 'b.crt'), b2.cert);
    await waitServed('b.test', fp(b2));
    assert.equal((await probe(port, { servername: 'b.test' })).keyType, 'rsa');
  });

  await t.test('a certificate that did not exist at start: temporary self-signed, then the real one when it appears', async () => {
    assert.ok(fulcrum.logs.some((e) => e.msg === 'certificate files not found: serving a temporary self-signed certificate until they appear'));
    const before = await probe(port, { servername: 'late.test' });
    assert.ok(isSelfSigned(before.x509));
    assert.match(before.x509!.subjectAltName ?? '', /DNS:late\.test/);
    const late = newCert('late.test');
    mkdirSync(lateDir);
    copyFileSync(late.keyPath, join(lateDir, 'privkey.pem'));
    copyFileSync(late.certPath, join(lateDir, 'fullchain.pem'));
    await waitServed('late.test', fp(late));
    assert.ok(fulcrum.logs.some((e) => e.msg === 'temporary self-signed certificate replaced'));
  });

  kept.destroy();
});
