/**
 * A TLS scanner (sslscan, from Debian's `sslscan` package) against fulcrum's
 * default TLS settings, with an RSA and an ECDSA certificate so every suite
 * of both families shows: only TLS 1.2 and 1.3, only ECDHE key exchange with
 * AEAD ciphers (AES-GCM, ChaCha20-Poly1305), the curves X25519, P-256 and
 * P-384, no renegotiation, no compression. (testssl.sh finds the same; its
 * full report is in the README: it takes about a minute, too long for CI.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFile } from 'node:child_process';
import { makeCA, signCert } from '../support/certs.js';
import { startFulcrum, type FulcrumProcess } from '../support/fulcrum.js';
import { freePorts } from '../support/ports.js';
import { tempDir } from '../support/tmp.js';

const hasSslscan = spawnSync('sslscan', ['--version']).status === 0;

let fulcrum: FulcrumProcess;
let port: number;

before(async () => {
  if (!hasSslscan) return;
  const dir = tempDir('fulcrum-scan-');
  const ca = makeCA(dir);
  const rsa = signCert(ca, dir, { commonName: 'scan.test', keyType: 'rsa', fileBase: 'rsa' });
  const ec = signCert(ca, dir, { commonName: 'scan.test', keyType: 'ec', fileBase: 'ec' });
  [port] = (await freePorts(1)) as [number];
  fulcrum = await startFulcrum({
    dir,
    config: `
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name scan.test;
    ssl_certificate ${rsa.certPath};
    ssl_certificate_key ${rsa.keyPath};
    ssl_certificate ${ec.certPath};
    ssl_certificate_key ${ec.keyPath};
    location / { return 200 "ok\\n"; }
  }
}
`,
  });
});

after(async () => {
  await fulcrum?.stop();
});

function sslscan(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sslscan', ['--no-colour', '--xml=-', `--sni-name=scan.test`, `127.0.0.1:${port}`], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

test('sslscan finds only TLS 1.2/1.3 with ECDHE + AEAD suites', { skip: hasSslscan ? false : 'sslscan is not installed', timeout: 40_000 }, async (t) => {
  const t0 = Date.now();
  const xml = await sslscan();
  t.diagnostic(`sslscan took ${Date.now() - t0} ms`);
  const protocols = [...xml.matchAll(/<protocol type="(\w+)" version="([\d.]+)" enabled="(\d)"/g)].filter((m) => m[3] === '1').map((m) => `${m[1]}${m[2]}`);
  assert.deepEqual(protocols, ['tls1.2', 'tls1.3']);
  const ciphers = [...xml.matchAll(/<cipher status="\w+" sslversion="(TLSv[\d.]+)" bits="\d+" cipher="([\w-]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(ciphers.sort(), [
    'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256',
    'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384',
    'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305',
    'TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256',
    'TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384',
    'TLSv1.2 ECDHE-RSA-CHACHA20-POLY1305',
    'TLSv1.3 TLS_AES_128_GCM_SHA256',
    'TLSv1.3 TLS_AES_256_GCM_SHA384',
    'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256',
  ]);
  const groups = new Set([...xml.matchAll(/<group sslversion="TLSv[\d.]+" bits="\d+" name="([^"]+)"/g)].map((m) => m[1]));
  assert.deepEqual([...groups].sort(), ['secp256r1 (NIST P-256)', 'secp384r1 (NIST P-384)', 'x25519']);
  assert.match(xml, /<renegotiation supported="0"/);
  assert.doesNotMatch(xml, /<compression supported="1"/);
  assert.doesNotMatch(xml, /vulnerable="1"/);
});
